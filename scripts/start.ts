/**
 * `npm start`: both workers in one `wrangler dev` (decoder = root wrangler.toml, the public entry point, plus
 * functions/vision/wrangler.toml behind its service binding) on http://localhost:8787, with KV, Durable Objects
 * and static assets simulated locally by miniflare. The default model is the committed model-shards/ folder,
 * served to both workers as private assets, so a fresh clone needs no setup step; it loads on the first request.
 *
 * Options: PORT (default 8787); extra arguments are passed to wrangler (e.g. `npm start -- --ip 0.0.0.0`).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modelId = process.env.MODEL_ID ?? "paligemma-shapes";
const manifest = join(repo, "model-shards", modelId, "manifest.json");
if (!existsSync(manifest)) {
  process.stderr.write(
    `model-shards/${modelId}/manifest.json is missing: convert the checkpoint first, e.g.\n` +
      `  npm run -s cli -- convert <hf checkpoint dir> model-shards/${modelId}\n`,
  );
  process.exit(1);
}

const wrangler = join(repo, "node_modules/wrangler/bin/wrangler.js");
const args = [wrangler, "dev", "-c", "wrangler.toml", "-c", "functions/vision/wrangler.toml", "--port", process.env.PORT ?? "8787"];
const child = spawn(process.execPath, [...args, ...process.argv.slice(2)], { cwd: repo, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
