/**
 * `npm run upload -- model-shards/<id> [--local]` (or just `<id>`): copies a converted model folder (every file
 * its manifest lists, then the manifest itself, so a reader never sees a manifest before its files) into the R2
 * bucket of the MODEL_BUCKET binding under "<id>/", for models too large for static assets. Then set
 * MODEL_SOURCE = "r2" and MODEL_ID = <id> in both wrangler configs. `--local` writes to miniflare's local R2
 * (for `npm start`) instead of Cloudflare. Progress (files and bytes) goes to stderr.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const local = argv.includes("--local");
const target = argv.find((a) => !a.startsWith("--"));
const bucket = process.env.MODEL_BUCKET_NAME ?? "paligemma-models";
if (!target) {
  process.stderr.write("usage: npm run upload -- model-shards/<id> [--local]\n");
  process.exit(2);
}
const dir = existsSync(join(resolve(target), "manifest.json")) ? resolve(target) : join(repo, "model-shards", target);
const manifestPath = join(dir, "manifest.json");
if (!existsSync(manifestPath)) {
  process.stderr.write(`${manifestPath} does not exist: convert the model first (npm run -s cli -- convert …)\n`);
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { id: string; files: Record<string, { bytes: number }> };
const id = manifest.id ?? basename(dir);
const names = [...Object.keys(manifest.files), "manifest.json"];
const total = names.reduce((a, n) => a + statSync(join(dir, n)).size, 0);
const wrangler = join(repo, "node_modules/wrangler/bin/wrangler.js");
let done = 0;
const mb = (b: number) => (b / 1e6).toFixed(1);
for (const [i, name] of names.entries()) {
  const size = statSync(join(dir, name)).size;
  process.stderr.write(`[${i + 1}/${names.length}] ${id}/${name} (${mb(size)} MB) … `);
  const args = [wrangler, "r2", "object", "put", `${bucket}/${id}/${name}`, "--file", join(dir, name), local ? "--local" : "--remote"];
  const r = spawnSync(process.execPath, args, { cwd: repo, stdio: ["ignore", "ignore", "pipe"] });
  if (r.status !== 0) {
    process.stderr.write(`failed\n${r.stderr?.toString() ?? ""}`);
    process.exit(r.status ?? 1);
  }
  done += size;
  process.stderr.write(`ok, ${mb(done)}/${mb(total)} MB (${Math.round((100 * done) / total)}%)\n`);
}
process.stderr.write(`uploaded ${names.length} files to r2://${bucket}/${id}/\n`);
