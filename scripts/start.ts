/**
 * `npm start`: both workers in one `wrangler dev` (decoder = root wrangler.toml, the public entry point, plus
 * functions/vision/wrangler.toml behind its service binding) on http://localhost:8787, with KV, Durable Objects
 * and static assets simulated locally by miniflare. The default model is the committed model-shards/ folder,
 * served to both workers as private assets, so a fresh clone needs no setup step; it loads on the first request.
 *
 * Options: PORT (default 8787); MODEL_ID (default paligemma-shapes) serves another converted model in
 * model-shards/<id>/ from both workers. A model cut into several stages of a kind (converted with --max-stage-mb or
 * --max-shard-mb) is served as a pipeline: one stage worker per stage, each its own Worker (own isolate) in the
 * same `wrangler dev` and so on the same port, the session Durable Object coordinating them; the configs are
 * written to .wrangler/pipeline/<id>/ (scripts/stage-configs.ts). PIPELINE=0 serves such a model in one isolate
 * per worker instead, PIPELINE=1 any model as a pipeline. Extra arguments are passed to wrangler (e.g.
 * `npm start -- --ip 0.0.0.0`).
 *
 * Access: with API_KEYS in .dev.vars (or .env, or `-- --var API_KEYS:...`) every /v1/* request needs
 * `Authorization: Bearer <key>`; without, the API is open, and this script says so before starting.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isMultiStage, readManifestAt, writePipelineConfigs } from "./stage-configs.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// wrangler needs Node >= 22. `npm start` runs the Node pinned in node_modules (package.json optionalDependencies)
// whatever the system's is; this only catches a direct run (`tsx scripts/start.ts`) on an older system Node.
const engines = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
if (Number(process.versions.node.split(".")[0]) < 22) {
  process.stderr.write(`Node ${process.versions.node} is too old (package.json engines: ${engines}): run \`npm start\`, which uses the pinned Node in node_modules/.bin, or install the Node in .nvmrc.\n`);
  process.exit(1);
}
const modelId = process.env.MODEL_ID ?? "paligemma-shapes";
const manifest = join(repo, "model-shards", modelId, "manifest.json");
if (!existsSync(manifest)) {
  process.stderr.write(
    `model-shards/${modelId}/manifest.json is missing: convert the checkpoint first, e.g.\n` +
      `  npm run -s cli -- convert <hf checkpoint dir> model-shards/${modelId}\n`,
  );
  process.exit(1);
}

/** Whether API keys will reach the decoder: wrangler reads .dev.vars (or .env) and `--var NAME:value`. */
function apiKeysConfigured(): boolean {
  const file = [".dev.vars", ".env"].map((f) => join(repo, f)).find((f) => existsSync(f));
  const fromFile = file !== undefined && /^\s*API_KEYS\s*=\s*["']?\S/m.test(readFileSync(file, "utf8"));
  return fromFile || process.argv.slice(2).some((a) => /^API_KEYS:\S/.test(a));
}

process.stderr.write(
  apiKeysConfigured()
    ? "API keys are configured: /v1/* requires Authorization: Bearer <key>.\n"
    : "No API keys (API_KEYS in .dev.vars): /v1/* is OPEN to anyone who can reach this port, and loopback clients are not rate limited. Fine for local development only.\n",
);

/** The configs to run: the committed ones for the default model, else generated ones serving MODEL_ID. */
function configs(): string[] {
  if (modelId === "paligemma-shapes" && process.env.PIPELINE === undefined) return ["wrangler.toml", "functions/vision/wrangler.toml"];
  const m = readManifestAt(dirname(manifest));
  const pipeline = process.env.PIPELINE === undefined ? isMultiStage(m) : process.env.PIPELINE === "1";
  const written = writePipelineConfigs(m, join(repo, ".wrangler/pipeline", modelId), { source: "assets", stages: pipeline, modelId });
  const stageList = pipeline ? m.stages.map((s) => `${s.name} (${s.kind} ${s.from}–${s.to})`).join(", ") : "";
  process.stderr.write(pipeline ? `Serving ${modelId} as a pipeline of ${m.stages.length} stage workers: ${stageList}.\n` : `Serving ${modelId}.\n`);
  return [written.decoder, written.vision, ...written.stages].map((p) => relative(repo, p));
}

const wrangler = join(repo, "node_modules/wrangler/bin/wrangler.js");
const args = [wrangler, "dev", ...configs().flatMap((c) => ["-c", c]), "--port", process.env.PORT ?? "8787"];
const child = spawn(process.execPath, [...args, ...process.argv.slice(2)], { cwd: repo, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
