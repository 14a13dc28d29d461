/**
 * `convert-adapter <peft_dir> <model_dir>/adapters/<name>`: a PEFT LoRA adapter (adapter_config.json +
 * adapter_model.safetensors, F32/F16/BF16) → one float32 weight file per base stage holding that stage's factors,
 * `adapter.json` describing them (shared/model/adapter-manifest.ts), and an entry in the base model's
 * manifest.json (`adapters`). Running it again replaces the adapter of that name.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ModelFormatError } from "../../shared/errors.ts";
import { ADAPTER_FORMAT, ADAPTER_NAME, ADAPTER_VERSION, parseAdapterManifest, type AdapterManifest, type AdapterModule } from "../../shared/model/adapter-manifest.ts";
import { parseManifest, type Manifest, type ManifestStage } from "../../shared/model/manifest.ts";
import { SafetensorsFile } from "../checkpoint/safetensors.ts";
import { sha256, WeightFile } from "../weight-file.ts";
import { baseMatrix, splitKey, type BaseMatrix } from "./modules.ts";
import { readLoraSettings } from "./peft-config.ts";

const WEIGHTS = "adapter_model.safetensors";
/** The adapter's manifest inside its folder. */
export const ADAPTER_FILE = "adapter.json";

/** One module's factors, as float32 in PEFT's Linear shapes: A [rank, in], B [out, rank]. */
interface Factors {
  readonly meta: AdapterModule;
  readonly base: BaseMatrix;
  readonly a: Float32Array;
  readonly b: Float32Array;
}

/**
 * Converts the adapter in `peftDir` into `outDir` (`<model_dir>/adapters/<name>`) and lists it in the model's
 * manifest. @returns the adapter's validated manifest
 */
export async function convertAdapter(peftDir: string, outDir: string, onProgress: (line: string) => void = () => {}): Promise<AdapterManifest> {
  const name = basename(resolve(outDir));
  const modelDir = dirname(dirname(resolve(outDir)));
  if (basename(dirname(resolve(outDir))) !== "adapters") throw new Error(`the output must be <model_dir>/adapters/<name>, got ${outDir}`);
  if (!ADAPTER_NAME.test(name)) throw new Error(`adapter name ${JSON.stringify(name)} must match ${ADAPTER_NAME} (letters, digits, . _ -)`);
  const manifestPath = join(modelDir, "manifest.json");
  const json = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, unknown> & { adapters?: Manifest["adapters"] };
  const base = parseManifest(json); // the model folder must be valid before it is changed
  const settings = readLoraSettings(peftDir);
  const file = await SafetensorsFile.open(join(peftDir, WEIGHTS));
  const factors = await readFactors(base, settings, file);
  onProgress(`read ${factors.length} adapted modules (${factors.filter((f) => f.base.part === "vision").length} in the vision tower and projector)`);

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const stages: AdapterManifest["stages"] = [];
  const tensors: AdapterManifest["tensors"] = {};
  const files: AdapterManifest["files"] = {};
  let factorBytes = 0;
  for (const stage of base.stages) {
    const pieces = factors.flatMap((f) => stagePiece(base, stage, f));
    if (pieces.length === 0) continue;
    const out = new WeightFile(outDir, `${stage.name}.bin`);
    for (const p of pieces) {
      out.append({ name: `${p.name}.lora_a`, type: "FLOAT", dims: [p.rank, p.k] }, bytesOf(p.a));
      out.append({ name: `${p.name}.lora_b`, type: "FLOAT", dims: [p.n, p.rank] }, bytesOf(p.b));
      factorBytes += 4 * (p.a.length + p.b.length);
    }
    files[out.name] = out.finish();
    tensors[out.name] = out.entries as AdapterManifest["tensors"][string];
    stages.push({ stage: stage.name, weights: out.name, modules: pieces.map((p) => p.name) });
    onProgress(`${stage.name}: ${pieces.length} modules → ${outDir}/${out.name}`);
  }
  const adapter = {
    format: ADAPTER_FORMAT,
    version: ADAPTER_VERSION,
    name,
    base: base.id,
    peft: { r: settings.r, lora_alpha: settings.alpha, use_rslora: settings.rslora, target_modules: settings.targetModules },
    modules: factors.map((f) => f.meta),
    stages,
    tensors,
    files,
    factorBytes,
  };
  const parsed = parseAdapterManifest(adapter);
  const text = JSON.stringify(adapter, null, 1) + "\n";
  writeFileSync(join(outDir, ADAPTER_FILE), text);
  const listing = { name, manifest: `adapters/${name}/${ADAPTER_FILE}`, sha256: sha256(new TextEncoder().encode(text)), factorBytes, vision: factors.some((f) => f.base.part === "vision") };
  json.adapters = [...(json.adapters ?? []).filter((a) => a.name !== name), listing];
  parseManifest(json);
  writeFileSync(manifestPath, JSON.stringify(json, null, 1) + "\n");
  onProgress(`wrote ${outDir}/${ADAPTER_FILE} (${(factorBytes / 1e6).toFixed(2)} MB of factors) and listed it in ${manifestPath}`);
  return parsed;
}

/** Every module's factors, checked against the config, the targets and the base's shapes. */
async function readFactors(base: Manifest, settings: ReturnType<typeof readLoraSettings>, file: SafetensorsFile): Promise<Factors[]> {
  const byModule = new Map<string, { A?: string; B?: string }>();
  for (const key of file.tensors.keys()) {
    const { module, factor } = splitKey(key);
    const entry = byModule.get(module) ?? {};
    entry[factor] = key;
    byModule.set(module, entry);
  }
  if (byModule.size === 0) throw new ModelFormatError(`${WEIGHTS} holds no LoRA factors`);
  const out: Factors[] = [];
  const seen = new Set<string>();
  for (const [module, keys] of byModule) {
    if (!keys.A || !keys.B) throw new ModelFormatError(`${WEIGHTS}: module ${module} has lora_${keys.A ? "A" : "B"} but no lora_${keys.A ? "B" : "A"}`);
    if (!settings.targets(module)) throw new ModelFormatError(`${WEIGHTS}: module ${module} has factors, but adapter_config.json's target_modules (${JSON.stringify(settings.targetModules)}) does not match it`);
    const m = baseMatrix(base.config, module);
    if (seen.has(m.name)) throw new ModelFormatError(`${WEIGHTS}: module ${module} adapts ${m.name} a second time (two naming schemes in one file?)`);
    seen.add(m.name);
    const { rank, alpha, scale } = settings.of(module);
    const a = await oriented(file, keys.A, [rank, m.in], settings.fanInFanOut);
    const b = await oriented(file, keys.B, [m.out, rank], settings.fanInFanOut);
    out.push({ meta: { name: m.name, source: module, rank, alpha, scale, out: m.out, in: m.in }, base: m, a, b });
  }
  return out.sort((x, y) => order(x.base) - order(y.base) || x.base.name.localeCompare(y.base.name));
}

function order(m: BaseMatrix): number {
  return (m.part === "vision" ? 0 : 1e6) + m.layer;
}

/** A factor as float32 [rows, cols]; stored transposed is accepted only with fan_in_fan_out. */
async function oriented(file: SafetensorsFile, key: string, [rows, cols]: [number, number], fanInFanOut: boolean): Promise<Float32Array> {
  const shape = file.tensors.get(key)!.shape;
  const data = await file.read(key);
  if (shape.length === 2 && shape[0] === rows && shape[1] === cols) return data;
  if (fanInFanOut && shape.length === 2 && shape[0] === cols && shape[1] === rows) {
    const t = new Float32Array(rows * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < rows; j++) t[j * cols + i] = data[i * rows + j];
    return t;
  }
  const why = rows !== shape[0] && key.includes("lora_A") ? " (r or rank_pattern disagrees with the stored rank?)" : "";
  throw new ModelFormatError(`${WEIGHTS}: ${key} is [${shape.join(", ")}], expected [${rows}, ${cols}]${why}`);
}

/** What of module `f` stage `s` holds: nothing, the whole factors, or an MLP part's rows/columns. */
function stagePiece(base: Manifest, s: ManifestStage, f: Factors): { name: string; rank: number; n: number; k: number; a: Float32Array; b: Float32Array }[] {
  const { name, rank } = f.meta;
  const whole = [{ name, rank, n: f.base.out, k: f.base.in, a: f.a, b: f.b }];
  if (s.kind === "head") return [];
  if (f.base.part === "vision") {
    if (s.kind !== "vision") return [];
    const inStage = name === "proj" ? s.to === base.config.vision.layers : f.base.layer >= s.from && f.base.layer < s.to;
    return inStage ? whole : [];
  }
  if (s.kind !== "decoder" || f.base.layer < s.from || f.base.layer >= s.to) return [];
  const mlp = s.mlp ?? { from: 0, to: base.config.text.intermediate };
  const attention = s.attention ?? true;
  if (name.includes(".attn.")) return attention ? whole : [];
  const rows = mlp.to - mlp.from;
  if (rows === base.config.text.intermediate) return whole;
  if (name.endsWith(".down")) {
    const a = new Float32Array(rank * rows); // columns [from, to) of A [rank, I]
    for (let r = 0; r < rank; r++) a.set(f.a.subarray(r * f.base.in + mlp.from, r * f.base.in + mlp.to), r * rows);
    return [{ name, rank, n: f.base.out, k: rows, a, b: f.b }];
  }
  return [{ name, rank, n: rows, k: f.base.in, a: f.a, b: f.b.slice(mlp.from * rank, mlp.to * rank) }]; // rows of B [I, rank]
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
