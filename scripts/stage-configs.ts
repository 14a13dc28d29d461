/**
 * Wrangler configs for a model served as a pipeline of stage workers: one per stage (functions/stage/, the
 * stage named in its `STAGE` var, its own Worker and so its own isolate), plus the decoder and vision workers'
 * configs with a `STAGE_<NAME>` service binding per stage (shared/api/stage-rpc.ts `stageBinding`) and the
 * decoder's `[limits] subrequests` raised to the pipeline's call budget (shared/pipeline/budget.ts). A model
 * planned with room for adapters (`--stage-adapter-mb`, the manifest's `budget.adapterBytes`) gets that adapter
 * cache (whole MB, rounded down) as its vision and decoder stage workers' ADAPTER_CACHE_MB, so what they keep
 * stays within their estimates.
 *
 *   npm run -s stage-configs -- model-shards/<id> --out deploy/<id> [--source r2] [--bucket paligemma-models]
 *
 * `npm start` writes the same for a local run (scripts/start.ts); `wrangler deploy -c <out>/<stage>.toml` each
 * stage, then the vision and the decoder worker, deploys the model (README "Serving a model larger than one
 * isolate").
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "smol-toml";
import { stageBinding } from "../shared/api/stage-rpc.ts";
import { parseManifest, type Manifest, type ManifestStage } from "../shared/model/manifest.ts";
import { DECODER_SUBREQUESTS } from "../shared/pipeline/budget.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Where the model's files come from in the generated configs. */
export interface PipelineConfigOptions {
  /** "assets" (the model's folder's parent as static assets, each worker its own copy) or "r2". */
  readonly source: "assets" | "r2";
  /** The folder holding `<id>/` (static assets; default model-shards/). */
  readonly modelsDir?: string;
  /** R2 bucket name (source r2; default paligemma-models). */
  readonly bucket?: string;
  /** Write stage workers (default true); false: only the decoder and vision configs serving `manifest.id`. */
  readonly stages?: boolean;
  /** The model's folder name in the store (default the manifest's id). */
  readonly modelId?: string;
}

/** The paths written. */
export interface PipelineConfigs {
  readonly decoder: string;
  readonly vision: string;
  readonly stages: readonly string[];
}

/** The Worker name of a model's stage: lower case, dashes, ≤ 63 characters. */
export function stageWorkerName(modelId: string, stage: string): string {
  const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  const name = `pg-${clean(modelId)}-${clean(stage)}`;
  return name.length <= 63 ? name : `pg-${clean(modelId).slice(0, 63 - 4 - clean(stage).length)}-${clean(stage)}`;
}

/** Reads `<dir>/manifest.json`. */
export function readManifestAt(dir: string): Manifest {
  return parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
}

type Toml = Record<string, unknown>;

/** Writes the configs of `manifest` into `outDir`. */
export function writePipelineConfigs(manifest: Manifest, outDir: string, opts: PipelineConfigOptions): PipelineConfigs {
  mkdirSync(outDir, { recursive: true });
  const rel = (p: string) => relative(outDir, p) || ".";
  const root = parse(readFileSync(join(repo, "wrangler.toml"), "utf8")) as Toml;
  const models = resolve(opts.modelsDir ?? join(repo, "model-shards"));
  const source: Toml =
    opts.source === "r2"
      ? { r2_buckets: [{ binding: "MODEL_BUCKET", bucket_name: opts.bucket ?? "paligemma-models" }] }
      : { assets: { directory: rel(models), binding: "MODEL_ASSETS", run_worker_first: true } };
  const services = (stages: readonly ManifestStage[]) => stages.map((s) => ({ binding: stageBinding(s.name), service: stageWorkerName(id, s.name) }));
  const id = opts.modelId ?? manifest.id;
  const modelVars = { MODEL_ID: id, MODEL_SOURCE: opts.source };
  const write = (name: string, config: Toml): string => {
    const path = join(outDir, `${name}.toml`);
    writeFileSync(path, `# Written by scripts/stage-configs.ts for model ${id}; regenerate rather than edit.\n${stringify(config)}\n`);
    return path;
  };

  const staged = opts.stages === false ? [] : manifest.stages;
  const adapterMb = Math.floor((manifest.budget?.adapterBytes ?? 0) / 1e6);
  const adapterVars = (s: ManifestStage) => (adapterMb >= 1 && s.kind !== "head" ? { ADAPTER_CACHE_MB: String(adapterMb) } : {});
  const stages = staged.map((s) =>
    write(s.name, {
      name: stageWorkerName(id, s.name),
      main: rel(join(repo, "functions/stage/index.ts")),
      compatibility_date: root.compatibility_date,
      compatibility_flags: root.compatibility_flags,
      workers_dev: false,
      preview_urls: false,
      limits: { cpu_ms: 300000 },
      observability: { enabled: true },
      ...source,
      vars: { ...modelVars, STAGE: s.name, ...adapterVars(s) },
      rules: root.rules,
    }),
  );

  const withSource = (config: Toml): Toml => {
    const { assets: _a, r2_buckets: _r, ...rest } = config;
    return { ...rest, ...source };
  };
  const decoder = write("decoder", {
    ...withSource(root),
    main: rel(join(repo, "functions/decoder/index.ts")),
    limits: { ...(root.limits as Toml), ...(staged.length ? { subrequests: DECODER_SUBREQUESTS } : {}) },
    vars: { ...(root.vars as Toml), ...modelVars },
    services: [...((root.services as Toml[]) ?? []), ...services(staged)],
    // Stage calls are subrequests of the session's request (shared/pipeline/budget.ts).
  });
  const visionRoot = parse(readFileSync(join(repo, "functions/vision/wrangler.toml"), "utf8")) as Toml;
  const vision = write("vision", {
    ...withSource(visionRoot),
    main: rel(join(repo, "functions/vision/index.ts")),
    vars: { ...(visionRoot.vars as Toml), ...modelVars },
    ...(staged.some((s) => s.kind === "vision") ? { services: services(staged.filter((s) => s.kind === "vision")) } : {}),
  });
  return { decoder, vision, stages };
}

/** Whether a model is served as a pipeline: some part of it (vision, decoder, head) is cut into several stages. */
export function isMultiStage(manifest: Manifest): boolean {
  return (["vision", "decoder", "head"] as const).some((k) => manifest.stages.filter((s) => s.kind === k).length > 1);
}

function main(argv: readonly string[]): void {
  const dir = argv.find((a) => !a.startsWith("--"));
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (!dir) throw new Error("usage: stage-configs <model dir> [--out <dir>] [--source assets|r2] [--bucket <name>]");
  const source = flag("--source") ?? "r2";
  if (source !== "assets" && source !== "r2") throw new Error(`--source must be assets or r2, got ${source}`);
  const manifest = readManifestAt(dir);
  const out = resolve(flag("--out") ?? join("deploy", basename(resolve(dir))));
  const written = writePipelineConfigs(manifest, out, { source, modelsDir: dirname(resolve(dir)), bucket: flag("--bucket"), modelId: basename(resolve(dir)) });
  process.stdout.write(`${written.stages.length} stage configs, decoder and vision configs in ${relative(process.cwd(), out) || "."}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
