/**
 * Deployability, checked offline: `wrangler deploy --dry-run` bundles each worker (nothing reaches Cloudflare),
 * and each bundle's compressed size must stay under Workers' 10 MB script limit (paid plan). The figure is
 * checked twice: wrangler's own "gzip" report and our gzip of the files it wrote.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/golden.ts";
import { OFFLINE_ENV } from "./support/dev-server.ts";

/** Workers' compressed script-size limit on the paid plan (docs/paligemma.md, "Cloudflare limits"). */
const LIMIT_BYTES = 10 * 1000 * 1000;

const run = promisify(execFile);

async function dryRun(config: string): Promise<{ reported: number; measured: number; raw: number }> {
  const out = mkdtempSync(join(tmpdir(), "paligemma-dry-"));
  try {
    const wrangler = join(REPO, "node_modules/wrangler/bin/wrangler.js");
    const { stdout, stderr } = await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", out, "-c", config], {
      cwd: REPO,
      env: { ...process.env, ...OFFLINE_ENV, WRANGLER_LOG: "log" },
      maxBuffer: 16 * 1024 * 1024,
    });
    const match = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout + stderr);
    if (!match) throw new Error(`no size report in wrangler's output:\n${stdout}\n${stderr}`);
    let measured = 0;
    let raw = 0;
    for (const name of readdirSync(out, { recursive: true }) as string[]) {
      const path = join(out, name);
      if (!statSync(path).isFile() || name.endsWith(".map") || name === "README.md") continue;
      const bytes = readFileSync(path);
      raw += bytes.length;
      measured += gzipSync(bytes, { level: 9 }).length;
    }
    return { reported: Number(match[2]) * 1024, measured, raw };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe("wrangler deploy --dry-run", () => {
  it("bundles both workers under the 10 MB compressed limit", async () => {
    const [decoder, vision] = await Promise.all([dryRun("wrangler.toml"), dryRun("functions/vision/wrangler.toml")]);
    for (const [name, size] of Object.entries({ decoder, vision })) {
      console.log(`${name}: ${(size.raw / 1e6).toFixed(2)} MB raw, ${(size.reported / 1e6).toFixed(2)} MB gzip (wrangler), ${(size.measured / 1e6).toFixed(2)} MB gzip -9 (measured)`);
      expect(size.reported).toBeLessThan(LIMIT_BYTES);
      expect(size.measured).toBeLessThan(LIMIT_BYTES);
      expect(size.raw).toBeGreaterThan(14e6); // the ORT wasm is in the bundle (not fetched at run time)
    }
  }, 180_000);
});
