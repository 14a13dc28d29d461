/**
 * LoRA test fixtures made in the test: a safetensors writer, a synthetic PEFT adapter for the shapes model in
 * transformers ≥ 4.52 naming (BF16, rsLoRA, a regex target_modules, rank/alpha patterns, the modules the golden
 * adapter leaves out: SigLIP's out_proj/fc1/fc2, the projector, the decoder's MLP), and that adapter merged into
 * the base checkpoint as PEFT merges (W + scale · B @ A in float64, rounded once to float32).
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Checkpoint } from "../../converter/checkpoint/checkpoint.ts";

export interface StTensor {
  readonly name: string;
  readonly dtype: "F32" | "BF16";
  readonly shape: readonly number[];
  readonly data: Float32Array; // BF16 tensors: values already representable in bf16
}

/** Writes a safetensors file (header, then the tensors in order). */
export function writeSafetensors(path: string, tensors: readonly StTensor[]): void {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const t of tensors) {
    const bytes = t.dtype === "F32" ? new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)) : bf16Bytes(t.data);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + bytes.length] };
    parts.push(bytes);
    at += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...parts]));
}

/** float32 → the nearest bf16 (round half to even), as float32. */
export function toBf16(x: Float32Array): Float32Array {
  const u = new Uint32Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(u.buffer);
}

function bf16Bytes(x: Float32Array): Uint8Array {
  const u = new Uint32Array(toBf16(x).buffer);
  const out = new Uint16Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i] >>> 16;
  return new Uint8Array(out.buffer);
}

/** A seeded normal generator (mulberry32 + Box-Muller). */
export function normals(seed: number): (std: number) => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  return (std) => std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** One module of the synthetic adapter: its v4.47 checkpoint name, shape, rank and alpha. */
export interface SyntheticModule {
  readonly hf: string; // checkpoint tensor name without ".weight"
  readonly peft: string; // the module's name in transformers ≥ 4.52 (what PEFT saves)
  readonly out: number;
  readonly in: number;
  readonly rank: number;
  readonly alpha: number;
  readonly a: Float32Array; // [rank, in], bf16 values
  readonly b: Float32Array; // [out, rank], bf16 values
}

/** The synthetic adapter's config: rsLoRA, r 4, alpha 8, down_proj rank 2, fc2 alpha 3, a regex target. */
export const SYNTHETIC_CONFIG = {
  peft_type: "LORA",
  r: 4,
  lora_alpha: 8,
  use_rslora: true,
  use_dora: false,
  fan_in_fan_out: false,
  bias: "none",
  modules_to_save: null,
  target_modules: String.raw`.*\.(self_attn\.(q_proj|out_proj|o_proj)|mlp\.(fc1|fc2|gate_proj|down_proj))|.*multi_modal_projector\.linear`,
  rank_pattern: { down_proj: 2 },
  alpha_pattern: { "mlp\\.fc2": 3 },
} as const;

/** The modules of the synthetic adapter for the shapes model (vision 128 / 384, text 192 / 512, q 192). */
export function syntheticModules(seed = 7): SyntheticModule[] {
  const rnd = normals(seed);
  const list: Omit<SyntheticModule, "a" | "b">[] = [];
  const add = (hf: string, peft: string, out: number, inF: number, rank: number, alpha: number) => list.push({ hf, peft, out, in: inF, rank, alpha });
  for (const l of [0, 3]) {
    const v = `vision_tower.vision_model.encoder.layers.${l}`;
    add(`${v}.self_attn.q_proj`, `model.${v}.self_attn.q_proj`, 128, 128, 4, 8);
    add(`${v}.self_attn.out_proj`, `model.${v}.self_attn.out_proj`, 128, 128, 4, 8);
    add(`${v}.mlp.fc1`, `model.${v}.mlp.fc1`, 384, 128, 4, 8);
    add(`${v}.mlp.fc2`, `model.${v}.mlp.fc2`, 128, 384, 4, 3);
  }
  add("multi_modal_projector.linear", "model.multi_modal_projector.linear", 192, 128, 4, 8);
  for (const l of [1, 2]) {
    add(`language_model.model.layers.${l}.self_attn.o_proj`, `model.language_model.layers.${l}.self_attn.o_proj`, 192, 192, 4, 8);
    add(`language_model.model.layers.${l}.mlp.gate_proj`, `model.language_model.layers.${l}.mlp.gate_proj`, 512, 192, 4, 8);
    add(`language_model.model.layers.${l}.mlp.down_proj`, `model.language_model.layers.${l}.mlp.down_proj`, 192, 512, 2, 8);
  }
  const fill = (n: number, std: number) => toBf16(Float32Array.from({ length: n }, () => rnd(std)));
  return list.map((m) => ({ ...m, a: fill(m.rank * m.in, 1 / Math.sqrt(m.in)), b: fill(m.out * m.rank, 0.12) }));
}

/** Writes the synthetic adapter (adapter_config.json, BF16 adapter_model.safetensors) into `dir`. */
export function writeSyntheticAdapter(dir: string, modules: readonly SyntheticModule[], config: object = SYNTHETIC_CONFIG): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(config, null, 2));
  writeSafetensors(
    join(dir, "adapter_model.safetensors"),
    modules.flatMap((m) => [
      { name: `base_model.model.${m.peft}.lora_A.weight`, dtype: "BF16" as const, shape: [m.rank, m.in], data: m.a },
      { name: `base_model.model.${m.peft}.lora_B.weight`, dtype: "BF16" as const, shape: [m.out, m.rank], data: m.b },
    ]),
  );
}

/** PEFT's scale for a module (rsLoRA: alpha / sqrt(r)). */
export function scaleOf(m: SyntheticModule, rslora = true): number {
  return rslora ? m.alpha / Math.sqrt(m.rank) : m.alpha / m.rank;
}

/** The base checkpoint in `baseDir` with `modules` merged (float64, rounded once), as one F32 file in `outDir`. */
export async function writeMerged(baseDir: string, modules: readonly SyntheticModule[], outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const ckpt = await Checkpoint.open(baseDir);
  try {
    const byName = new Map(modules.map((m) => [`${m.hf}.weight`, m]));
    const tensors: StTensor[] = [];
    for (const name of ckpt.tensorNames()) {
      const w = await ckpt.read(name);
      const m = byName.get(name);
      if (m) {
        const s = scaleOf(m);
        for (let o = 0; o < m.out; o++) {
          for (let i = 0; i < m.in; i++) {
            let d = 0;
            for (let r = 0; r < m.rank; r++) d += m.b[o * m.rank + r] * m.a[r * m.in + i];
            w[o * m.in + i] = w[o * m.in + i] + s * d;
          }
        }
      }
      tensors.push({ name, dtype: "F32", shape: ckpt.shape(name), data: w });
    }
    writeSafetensors(join(outDir, "model.safetensors"), tensors);
  } finally {
    ckpt.close();
  }
  for (const f of ["config.json", "preprocessor_config.json"]) copyFileSync(join(baseDir, f), join(outDir, f));
}

/**
 * A rank-`rank` adapter on every decoder layer's q/o/gate/up/down of the shapes model (nothing in the vision tower):
 * 737,280 bytes of float32 factors at rank 16, more than shapes-lora-a's decoder factors (442,368), so two such
 * adapters pass a 1 MB budget while either alone fits it. Its config: a regex target, rsLoRA (scale alpha / √r = 4).
 */
export function decoderModules(rank = 16, seed = 11): { modules: SyntheticModule[]; config: object } {
  const rnd = normals(seed);
  const list: Omit<SyntheticModule, "a" | "b">[] = [];
  for (let l = 0; l < 4; l++) {
    const p = `language_model.model.layers.${l}`;
    const q = `model.language_model.layers.${l}`;
    for (const [m, out, inF] of [["self_attn.q_proj", 192, 192], ["self_attn.o_proj", 192, 192], ["mlp.gate_proj", 512, 192], ["mlp.up_proj", 512, 192], ["mlp.down_proj", 192, 512]] as const) {
      list.push({ hf: `${p}.${m}`, peft: `${q}.${m}`, out, in: inF, rank, alpha: rank });
    }
  }
  const fill = (n: number, std: number) => toBf16(Float32Array.from({ length: n }, () => rnd(std)));
  const modules = list.map((m) => ({ ...m, a: fill(m.rank * m.in, 1 / Math.sqrt(m.in)), b: fill(m.out * m.rank, 0.015) }));
  const config = { ...SYNTHETIC_CONFIG, r: rank, lora_alpha: rank, target_modules: String.raw`.*language_model\.layers\.\d+\.(self_attn\.(q_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))`, rank_pattern: {}, alpha_pattern: {} };
  return { modules, config };
}
