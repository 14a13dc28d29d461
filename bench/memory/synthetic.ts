/**
 * A PaliGemma-shaped model folder with synthetic weights for the memory bench: the manifest lists every stage of
 * a plan (so it validates like a converted model's), but weight files are written only for the stages that will
 * be measured, with the tensors the kernel engine reads, in the converter's names, layouts and formats. Weight
 * values do not change memory: codes are pseudo-random, scales small, norms 1.
 */
import { createHash } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { PlannedStage } from "../../converter/plan.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { MANIFEST_FORMAT, MANIFEST_VERSION, parseManifest, type Manifest, type TensorEntry } from "../../shared/model/manifest.ts";
import type { StageBudget, StageEstimate, StageWeights } from "../../shared/model/stage-memory.ts";

type Fill = "ones" | "small" | "codes" | "scales";
interface Tensor {
  readonly name: string;
  readonly dtype: TensorEntry["dtype"];
  readonly dims: readonly number[];
  readonly fill: Fill;
}

/** The tensors of one linear layer W[n, k] in the model's format (MatMulNBits for int8/int4, [k, n] float otherwise). */
function linear(name: string, n: number, k: number, w: StageWeights, bias: boolean): Tensor[] {
  const out: Tensor[] = [];
  if (w.dtype === "int8" || w.dtype === "int4") {
    const blocks = Math.ceil(k / w.blockSize);
    const blob = (w.blockSize * (w.dtype === "int8" ? 8 : 4)) / 8;
    out.push({ name: `${name}.qweight`, dtype: "UINT8", dims: [n, blocks, blob], fill: "codes" }, { name: `${name}.scales`, dtype: "FLOAT", dims: [n * blocks], fill: "scales" });
  } else {
    out.push({ name: `${name}.weight`, dtype: w.dtype === "fp32" ? "FLOAT" : "FLOAT16", dims: [k, n], fill: "small" });
  }
  if (bias) out.push({ name: `${name}.bias`, dtype: "FLOAT", dims: [n], fill: "small" });
  return out;
}

/** What the kernel engine reads from a stage's weight file (shared/kernel/decoder-weights.ts, vision-weights.ts). */
export function stageTensors(c: ModelConfig, w: StageWeights, s: PlannedStage): Tensor[] {
  const vec = (name: string, n: number, fill: Fill = "ones"): Tensor => ({ name, dtype: "FLOAT", dims: [n], fill });
  const t = c.text;
  const out: Tensor[] = [];
  if (s.kind === "head") return [vec("head.norm.weight", t.hidden), ...linear("head.embed", s.to - s.from, t.hidden, w, false)];
  if (s.kind === "decoder") {
    const gemma2 = t.family === "gemma2";
    const mlp = s.mlp ?? { from: 0, to: t.intermediate };
    const rows = mlp.to - mlp.from;
    for (let l = s.from; l < s.to; l++) {
      const p = `dec.l${l}`;
      if (s.attention !== false) {
        out.push(vec(`${p}.input_norm.weight`, t.hidden));
        if (gemma2) out.push(vec(`${p}.post_attn_norm.weight`, t.hidden));
        out.push(...linear(`${p}.attn.q`, t.heads * t.headDim, t.hidden, w, false), ...linear(`${p}.attn.k`, t.kvHeads * t.headDim, t.hidden, w, false));
        out.push(...linear(`${p}.attn.v`, t.kvHeads * t.headDim, t.hidden, w, false), ...linear(`${p}.attn.o`, t.hidden, t.heads * t.headDim, w, false));
      }
      out.push(vec(gemma2 ? `${p}.pre_ff_norm.weight` : `${p}.post_attn_norm.weight`, t.hidden));
      if (gemma2) out.push(vec(`${p}.post_ff_norm.weight`, t.hidden));
      out.push(...linear(`${p}.gate`, rows, t.hidden, w, false), ...linear(`${p}.up`, rows, t.hidden, w, false), ...linear(`${p}.down`, t.hidden, rows, w, false));
    }
    return out;
  }
  const v = c.vision;
  const d = v.hidden;
  if (s.from === 0) {
    out.push({ name: "vis.patch.weight", dtype: "FLOAT", dims: [d, 3, v.patchSize, v.patchSize], fill: "small" }, vec("vis.patch.bias", d, "small"));
    out.push({ name: "vis.pos", dtype: "FLOAT", dims: [c.imageTokens, d], fill: "small" });
  }
  for (let l = s.from; l < s.to; l++) {
    const p = `vis.l${l}`;
    out.push(vec(`${p}.ln1.weight`, d), vec(`${p}.ln1.bias`, d, "small"), vec(`${p}.ln2.weight`, d), vec(`${p}.ln2.bias`, d, "small"));
    for (const m of ["q", "k", "v", "o"]) out.push(...linear(`${p}.${m}`, d, d, w, true));
    out.push(...linear(`${p}.fc1`, v.intermediate, d, w, true), ...linear(`${p}.fc2`, d, v.intermediate, w, true));
  }
  if (s.to === v.layers) out.push(vec("vis.post_ln.weight", d), vec("vis.post_ln.bias", d, "small"), ...linear("proj", c.projectionDim, d, w, true));
  return out;
}

const BYTES: Record<TensorEntry["dtype"], number> = { FLOAT: 4, FLOAT16: 2, UINT8: 1 } as Record<TensorEntry["dtype"], number>;

/** Writes one weight file; returns its tensor entries, size and sha256. */
async function writeFile(path: string, tensors: readonly Tensor[]): Promise<{ entries: TensorEntry[]; bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  const entries: TensorEntry[] = [];
  let offset = 0;
  let seed = 1;
  const write = async (chunk: Uint8Array) => {
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  };
  for (const t of tensors) {
    const pad = (64 - (offset % 64)) % 64;
    if (pad) await write(new Uint8Array(pad));
    offset += pad;
    const length = t.dims.reduce((a, b) => a * b, 1) * (BYTES[t.dtype] ?? 4);
    entries.push({ name: t.name, dtype: t.dtype, dims: [...t.dims], offset, length });
    for (let done = 0; done < length; ) {
      const n = Math.min(1 << 22, length - done);
      const chunk = new Uint8Array(n);
      if (t.fill === "codes") {
        const words = new Uint32Array(chunk.buffer, 0, n >> 2);
        let x = seed++ | 1;
        for (let i = 0; i < words.length; i++) words[i] = x = (x ^ (x << 13) ^ (x >>> 17) ^ (x << 5)) >>> 0;
      } else if (t.dtype === "FLOAT") {
        const f = new Float32Array(chunk.buffer, 0, n >> 2);
        f.fill(t.fill === "ones" ? 1 : t.fill === "scales" ? 0.002 : 0.01);
      }
      await write(chunk);
      done += n;
    }
    offset += length;
  }
  await new Promise<void>((resolve, reject) => out.end((err: unknown) => (err ? reject(err) : resolve())));
  return { entries, bytes: offset, sha256: hash.digest("hex") };
}

/**
 * Writes `dir`/manifest.json for `stages` (the whole plan) and the weight files of the stages named in `write`;
 * the other stages' files are listed with their planned size and a placeholder digest (never read).
 */
export async function writeSyntheticModel(dir: string, c: ModelConfig, w: StageWeights, stages: readonly (PlannedStage & { name: string; estimate?: StageEstimate })[], budget: StageBudget & { maxStageBytes: number }, write: ReadonlySet<string>, log: (line: string) => void): Promise<Manifest> {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorEntry[]> = {};
  const files: Record<string, { bytes: number; sha256: string }> = {};
  const manifestStages = [];
  for (const s of stages) {
    const weights = `${s.name}.bin`;
    const part = s.mlp !== undefined || s.attention === false;
    const graph = part ? undefined : `${s.name}.onnx`;
    if (graph) files[graph] = { bytes: 0, sha256: "0".repeat(64) };
    if (write.has(s.name)) {
      const t0 = performance.now();
      const f = await writeFile(join(dir, weights), stageTensors(c, w, s));
      tensors[weights] = f.entries;
      files[weights] = { bytes: f.bytes, sha256: f.sha256 };
      log(`  wrote ${s.name}: ${(f.bytes / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } else {
      tensors[weights] = [];
      files[weights] = { bytes: s.bytes, sha256: "0".repeat(64) };
    }
    manifestStages.push({ name: s.name, kind: s.kind, from: s.from, to: s.to, ...(graph ? { graph } : {}), weights, ...(s.mlp ? { mlp: s.mlp } : {}), ...(s.attention === false ? { attention: false } : {}), ...(s.cut ? { cut: s.cut } : {}), ...(s.estimate ? { estimate: s.estimate } : {}) });
  }
  const manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id: `synthetic-${w.dtype}`,
    config: c,
    weights: { dtype: w.dtype, blockSize: w.blockSize, accuracyLevel: 4 },
    preprocess: { version: 1, size: c.vision.imageSize, rescale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], resample: "bicubic" },
    softTokens: { tokens: c.imageTokens, dim: c.projectionDim, dtype: "float32", scaling: "projector_output" },
    tokenizer: null,
    stages: manifestStages,
    tensors,
    files,
    budget,
  };
  const parsed = parseManifest(manifest);
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  return parsed;
}
