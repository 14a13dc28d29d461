/**
 * `npx tsx scripts/replica-configs.ts <model dir> --out <dir> --replicas <r>`: after `stage-configs` wrote a
 * pipeline's configs into `<dir>`, adds r − 1 more Workers of every vision and decoder stage
 * (`<stage>-r<i>.toml`, the stage's config under the name `<worker>-r<i>`) and binds them in the decoder and
 * vision workers' configs as `STAGE_<NAME>_R<i>` (shared/api/spread-rpc.ts `replicaBinding`): prompts and
 * images are then spread over them (docs/pipeline.md, "Time to first token").
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "smol-toml";
import { replicaBinding } from "../shared/api/spread-rpc.ts";
import { stageBinding } from "../shared/api/stage-rpc.ts";
import type { Manifest } from "../shared/model/manifest.ts";
import { readManifestAt, type PipelineConfigs } from "./stage-configs.ts";

type Toml = Record<string, unknown>;

/** Writes the replicas' configs next to `configs` and binds them; returns the paths of the replicas' configs. */
export function writeReplicaConfigs(manifest: Manifest, configs: PipelineConfigs, replicas: number): string[] {
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`replicas must be an integer ≥ 1, got ${replicas}`);
  const written: string[] = [];
  const bindings: { kind: string; binding: string; service: string }[] = [];
  for (const s of manifest.stages.filter((x) => x.kind !== "head")) {
    const path = configs.stages.find((p) => basename(p) === `${s.name}.toml`);
    if (!path) throw new Error(`no config for stage ${s.name} among the ones written`);
    const config = parse(readFileSync(path, "utf8")) as Toml;
    for (let i = 1; i < replicas; i++) {
      const name = `${config.name as string}-r${i}`;
      const out = path.replace(/\.toml$/, `-r${i}.toml`);
      writeFileSync(out, `# Written by scripts/replica-configs.ts: replica ${i} of stage ${s.name}; regenerate rather than edit.\n${stringify({ ...config, name })}\n`);
      written.push(out);
      bindings.push({ kind: s.kind, binding: replicaBinding(stageBinding(s.name), i), service: name });
    }
  }
  for (const [path, kinds] of [[configs.decoder, ["vision", "decoder"]], [configs.vision, ["vision"]]] as const) {
    const config = parse(readFileSync(path, "utf8")) as Toml;
    const old = ((config.services as Toml[]) ?? []).filter((b) => !/_R\d+$/.test(String(b.binding)));
    const added = bindings.filter((b) => (kinds as readonly string[]).includes(b.kind)).map(({ binding, service }) => ({ binding, service }));
    writeFileSync(path, stringify({ ...config, services: [...old, ...added] }) + "\n");
  }
  return written;
}

function main(argv: readonly string[]): void {
  const dir = argv.find((a, i) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--"));
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = flag("--out");
  const replicas = Number(flag("--replicas"));
  if (!dir || !out) throw new Error("usage: replica-configs <model dir> --out <configs dir> --replicas <r>");
  const manifest = readManifestAt(dir);
  const stages = manifest.stages.map((s) => join(resolve(out), `${s.name}.toml`));
  const written = writeReplicaConfigs(manifest, { decoder: join(resolve(out), "decoder.toml"), vision: join(resolve(out), "vision.toml"), stages }, replicas);
  process.stdout.write(`${written.length} replica configs in ${out}; decoder.toml and vision.toml bind them\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
