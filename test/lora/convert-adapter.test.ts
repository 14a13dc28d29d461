/**
 * convert-adapter: the golden PEFT adapter (v4.47 names, F32) and a synthetic one (transformers ≥ 4.52 names, BF16,
 * rsLoRA, a regex target_modules, rank/alpha patterns, fan_in_fan_out) become per-stage float32 factors whose bytes
 * are PEFT's, described by adapter.json and listed in the model's manifest; an adapter of a model cut into MLP parts
 * is cut like it; what the runtime cannot honour is refused naming the field.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { convert } from "../../converter/convert.ts";
import { parseAdapterManifest, type AdapterManifest } from "../../shared/model/adapter-manifest.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import { REPO, SHARED, SHAPES_MODEL } from "../helpers/golden.ts";
import { readRaw } from "../helpers/safetensors-raw.ts";
import { SYNTHETIC_CONFIG, syntheticModules, writeSafetensors, writeSyntheticAdapter } from "../helpers/lora-fixtures.ts";

const GOLDEN = join(SHARED, "golden-lora/shapes-lora-a");
const work = mkdtempSync(join(tmpdir(), "pg-lora-conv-"));
const model = join(work, "paligemma-shapes");
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => cpSync(join(REPO, "model-shards/paligemma-shapes"), model, { recursive: true, filter: (p) => !p.includes("/adapters") }));

/** A tensor of a converted adapter as float32. */
function factor(dir: string, m: AdapterManifest, file: string, name: string): { dims: number[]; data: Float32Array } {
  const e = m.tensors[file].find((t) => t.name === name);
  if (!e) throw new Error(`${file}: no ${name}`);
  const b = readFileSync(join(dir, file)).subarray(e.offset, e.offset + e.length);
  return { dims: e.dims, data: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) };
}

describe("the golden adapter", () => {
  let m: AdapterManifest;
  const out = join(model, "adapters/shapes-lora-a");
  beforeAll(async () => {
    m = await convertAdapter(GOLDEN, out);
  });

  it("maps its 40 modules onto the base's matrices, scale alpha / r = 2", () => {
    expect(m.modules).toHaveLength(40);
    expect(new Set(m.modules.map((x) => x.scale))).toEqual(new Set([2]));
    expect(m.modules.filter((x) => x.name.startsWith("vis.")).map((x) => x.name).sort()).toEqual(
      [0, 1, 2, 3].flatMap((l) => ["k", "q", "v"].map((p) => `vis.l${l}.${p}`)),
    );
    expect(m.modules.find((x) => x.name === "dec.l2.down")).toEqual({ name: "dec.l2.down", source: "language_model.model.layers.2.mlp.down_proj", rank: 8, alpha: 16, scale: 2, out: 192, in: 512 });
    expect(m.stages.map((s) => [s.stage, s.weights, s.modules.length])).toEqual([["vision-0", "vision-0.bin", 12], ["decoder-0", "decoder-0.bin", 28]]);
    expect(m.factorBytes).toBe(540672);
  });

  it("stores PEFT's factors byte for byte, unscaled", () => {
    const raw = readRaw(join(GOLDEN, "adapter_model.safetensors"));
    const key = "base_model.model.language_model.model.layers.3.self_attn.o_proj";
    const a = factor(out, m, "decoder-0.bin", "dec.l3.attn.o.lora_a");
    const b = factor(out, m, "decoder-0.bin", "dec.l3.attn.o.lora_b");
    expect(a.dims).toEqual([8, 192]);
    expect(b.dims).toEqual([192, 8]);
    expect(Buffer.from(a.data.buffer).equals(raw.get(`${key}.lora_A.weight`)!.bytes)).toBe(true);
    expect(Buffer.from(b.data.buffer).equals(raw.get(`${key}.lora_B.weight`)!.bytes)).toBe(true);
  });

  it("is listed in the model's manifest with its factor bytes and whether it changes the vision tower", () => {
    const base = parseManifest(JSON.parse(readFileSync(join(model, "manifest.json"), "utf8")));
    expect(base.adapters).toEqual([{ name: "shapes-lora-a", manifest: "adapters/shapes-lora-a/adapter.json", sha256: expect.stringMatching(/^[0-9a-f]{64}$/), factorBytes: 540672, vision: true }]);
    expect(parseAdapterManifest(JSON.parse(readFileSync(join(out, "adapter.json"), "utf8"))).name).toBe("shapes-lora-a");
  });
});

describe("a synthetic adapter: transformers ≥ 4.52 names, BF16, rsLoRA, regex targets, rank and alpha patterns", () => {
  const modules = syntheticModules();
  const peft = join(work, "peft-b");
  const out = join(model, "adapters/b");
  let m: AdapterManifest;
  beforeAll(async () => {
    writeSyntheticAdapter(peft, modules);
    m = await convertAdapter(peft, out);
  });

  it("reads the patterns: rank 2 for down_proj, alpha 3 for fc2, scale alpha / sqrt(r)", () => {
    const of = (name: string) => m.modules.find((x) => x.name === name)!;
    expect(of("dec.l1.down")).toMatchObject({ source: "model.language_model.layers.1.mlp.down_proj", rank: 2, alpha: 8, scale: 8 / Math.sqrt(2) });
    expect(of("vis.l3.fc2")).toMatchObject({ rank: 4, alpha: 3, scale: 1.5 });
    expect(of("vis.l0.o")).toMatchObject({ source: "model.vision_tower.vision_model.encoder.layers.0.self_attn.out_proj", scale: 4 });
    expect(of("proj")).toMatchObject({ source: "model.multi_modal_projector.linear", out: 192, in: 128 });
    expect(m.peft).toEqual({ r: 4, lora_alpha: 8, use_rslora: true, target_modules: SYNTHETIC_CONFIG.target_modules });
  });

  it("takes PEFT's \"all-linear\" target as every module", async () => {
    const dir = join(work, "peft-all");
    writeSyntheticAdapter(dir, modules, { ...SYNTHETIC_CONFIG, target_modules: "all-linear" });
    const all = await convertAdapter(dir, join(model, "adapters/all"));
    expect(all.modules.map((x) => x.name)).toEqual(m.modules.map((x) => x.name));
  });

  it("widens BF16 to the same float32 values", () => {
    const src = modules.find((x) => x.peft.endsWith("layers.2.mlp.gate_proj"))!;
    expect(factor(out, m, "decoder-0.bin", "dec.l2.gate.lora_a").data).toEqual(src.a);
    expect(factor(out, m, "decoder-0.bin", "dec.l2.gate.lora_b").data).toEqual(src.b);
  });

  it("accepts factors stored transposed when fan_in_fan_out is set, and only then", async () => {
    const dir = join(work, "peft-fifo");
    const write = (config: object) => {
      writeSyntheticAdapter(dir, modules, config);
      writeSafetensors(
        join(dir, "adapter_model.safetensors"),
        modules.flatMap((x) => [
          { name: `base_model.model.${x.peft}.lora_A.weight`, dtype: "BF16" as const, shape: [x.in, x.rank], data: transpose(x.a, x.rank, x.in) },
          { name: `base_model.model.${x.peft}.lora_B.weight`, dtype: "BF16" as const, shape: [x.rank, x.out], data: transpose(x.b, x.out, x.rank) },
        ]),
      );
    };
    write({ ...SYNTHETIC_CONFIG, fan_in_fan_out: true });
    const fifo = await convertAdapter(dir, join(model, "adapters/fifo"));
    const src = modules.find((x) => x.peft.endsWith("layers.3.mlp.fc1"))!;
    expect(factor(join(model, "adapters/fifo"), fifo, "vision-0.bin", "vis.l3.fc1.lora_a").data).toEqual(src.a);
    expect(factor(join(model, "adapters/fifo"), fifo, "vision-0.bin", "vis.l3.fc1.lora_b").data).toEqual(src.b);
    write(SYNTHETIC_CONFIG);
    await expect(convertAdapter(dir, join(model, "adapters/fifo2"))).rejects.toThrow(/lora_A\.weight is \[128, 4\], expected \[4, 128\]/);
  });
});

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

describe("refusals name the field", () => {
  const modules = syntheticModules(11);
  const bad = async (config: object, mods = modules) => {
    const dir = join(work, `bad-${Math.random().toString(36).slice(2)}`);
    writeSyntheticAdapter(dir, mods, config);
    return convertAdapter(dir, join(model, "adapters/bad"));
  };
  it("use_dora, modules_to_save, bias, another peft_type", async () => {
    await expect(bad({ ...SYNTHETIC_CONFIG, use_dora: true })).rejects.toThrow(/adapter_config\.json: use_dora is true/);
    await expect(bad({ ...SYNTHETIC_CONFIG, modules_to_save: ["lm_head"] })).rejects.toThrow(/adapter_config\.json: modules_to_save is \["lm_head"\]/);
    await expect(bad({ ...SYNTHETIC_CONFIG, bias: "lora_only" })).rejects.toThrow(/adapter_config\.json: bias is "lora_only"/);
    await expect(bad({ ...SYNTHETIC_CONFIG, peft_type: "IA3" })).rejects.toThrow(/adapter_config\.json: peft_type is "IA3"/);
  });
  it("a module the base does not have, or that target_modules does not match, or a rank that disagrees", async () => {
    const lm = { ...modules[0], peft: "lm_head", hf: "lm_head", out: 1600, in: 192, a: new Float32Array(4 * 192), b: new Float32Array(1600 * 4) };
    await expect(bad({ ...SYNTHETIC_CONFIG, target_modules: ".*" }, [lm])).rejects.toThrow(/module lm_head is not a linear projection of this PaliGemma/);
    const deep = { ...modules[0], peft: "model.language_model.layers.9.mlp.gate_proj" };
    await expect(bad({ ...SYNTHETIC_CONFIG, target_modules: ".*" }, [deep])).rejects.toThrow(/names layer 9, but the base model has 4/);
    await expect(bad({ ...SYNTHETIC_CONFIG, target_modules: ["q_proj"] })).rejects.toThrow(/module model\.vision_tower\.vision_model\.encoder\.layers\.0\.self_attn\.out_proj has factors, but adapter_config\.json's target_modules/);
    await expect(bad({ ...SYNTHETIC_CONFIG, rank_pattern: {} })).rejects.toThrow(/down_proj\.lora_A\.weight is \[2, 512\], expected \[4, 512\]/);
  });
});

describe("a model cut into MLP parts", () => {
  it("gets each part's rows of gate/up's B and columns of down's A; attention factors only where attention is", async () => {
    const parts = join(work, "parts");
    await convert(SHAPES_MODEL, parts, { dtype: "fp32", mlpParts: 2 });
    const whole = JSON.parse(readFileSync(join(model, "adapters/b/adapter.json"), "utf8")) as AdapterManifest;
    const cut = await convertAdapter(join(work, "peft-b"), join(parts, "adapters/b"));
    const stage = (name: string) => cut.stages.find((s) => s.stage === name)!;
    expect(stage("decoder-l1.0").modules.sort()).toEqual(["dec.l1.attn.o", "dec.l1.down", "dec.l1.gate"]);
    expect(stage("decoder-l1.1").modules.sort()).toEqual(["dec.l1.down", "dec.l1.gate"]);
    const w = (n: string) => factor(join(model, "adapters/b"), whole, "decoder-0.bin", n);
    const p = (s: string, n: string) => factor(join(parts, "adapters/b"), cut, `${s}.bin`, n);
    expect(p("decoder-l2.1", "dec.l2.gate.lora_b").data).toEqual(w("dec.l2.gate.lora_b").data.slice(256 * 4));
    expect(p("decoder-l2.1", "dec.l2.gate.lora_a").data).toEqual(w("dec.l2.gate.lora_a").data);
    const down = w("dec.l2.down.lora_a").data; // [2, 512]
    expect(p("decoder-l2.0", "dec.l2.down.lora_a")).toEqual({ dims: [2, 256], data: Float32Array.from([...down.slice(0, 256), ...down.slice(512, 768)]) });
    expect(p("decoder-l2.1", "dec.l2.down.lora_b").data).toEqual(w("dec.l2.down.lora_b").data);
  });
});
