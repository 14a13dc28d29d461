/**
 * `npm run upload -- <model id> [--local]`: copies model-shards/<id>/ (every file its manifest lists, plus the
 * manifest) into the R2 bucket of the root wrangler.toml's MODEL_BUCKET binding under "<id>/", for models too
 * large for static assets. Then set MODEL_SOURCE = "r2" and MODEL_ID = <id> in both wrangler configs.
 * `--local` writes to miniflare's local R2 (for `npm start`) instead of Cloudflare.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const local = argv.includes("--local");
const id = argv.find((a) => !a.startsWith("--"));
const bucket = process.env.MODEL_BUCKET_NAME ?? "paligemma-models";
if (!id) {
  process.stderr.write("usage: npm run upload -- <model id> [--local]\n");
  process.exit(2);
}
const dir = join(repo, "model-shards", id);
const manifestPath = join(dir, "manifest.json");
if (!existsSync(manifestPath)) {
  process.stderr.write(`${manifestPath} does not exist\n`);
  process.exit(1);
}
const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { files: Record<string, unknown> };
const names = [...Object.keys(manifest.files), "manifest.json"];
const wrangler = join(repo, "node_modules/wrangler/bin/wrangler.js");
for (const name of names) {
  const args = [wrangler, "r2", "object", "put", `${bucket}/${id}/${name}`, "--file", join(dir, name), local ? "--local" : "--remote"];
  process.stderr.write(`${id}/${name}\n`);
  const r = spawnSync(process.execPath, args, { cwd: repo, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.stderr.write(`uploaded ${names.length} files to r2://${bucket}/${id}/\n`);
