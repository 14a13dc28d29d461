/**
 * MLP-part stages from a real checkpoint (../shared/models/paligemma-shapes, Gemma 2): each split layer's gate/up
 * rows and down columns, reassembled from the part files, equal the unsplit conversion's tensors byte for byte, at
 * int8, int4 and fp32; the norms come along; the manifest validates and records estimates; onnxruntime refuses it.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { parseManifest, type Manifest, type ManifestStage } from "../../shared/model/manifest.ts";
import { DEFAULT_STAGE_BUDGET, estimateStage } from "../../shared/model/stage-memory.ts";
import { loadGolden, maxAbs, maxAbsDiff, REPO, SHAPES_MODEL } from "../helpers/golden.ts";

const DTYPES = ["int8", "int4", "fp32"] as const;
const work = mkdtempSync(join(tmpdir(), "pg-parts-"));
const wholeManifests = new Map<string, Manifest>(); // each dtype converted unsplit …
const partManifests = new Map<string, Manifest>(); // … and with every layer's MLP cut into 3 parts
const wholeDir = (dtype: string) => join(work, `${dtype}-whole`);
const partsDir = (dtype: string) => join(work, `${dtype}-parts`);
beforeAll(async () => {
  for (const dtype of DTYPES) {
    wholeManifests.set(dtype, await convert(SHAPES_MODEL, wholeDir(dtype), { dtype }));
    partManifests.set(dtype, await convert(SHAPES_MODEL, partsDir(dtype), { dtype, mlpParts: 3 }));
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A tensor's bytes from a converted folder. */
function tensor(dir: string, m: Manifest, s: ManifestStage, name: string): { dims: number[]; bytes: Buffer } {
  const e = m.tensors[s.weights].find((x) => x.name === name);
  if (!e) throw new Error(`${s.name}: no ${name}`);
  return { dims: e.dims, bytes: readFileSync(join(dir, s.weights)).subarray(e.offset, e.offset + e.length) };
}

/** Row-major blocks [rows, ·] of the parts, side by side: row r of every part in turn. */
function sideBySide(blocks: { bytes: Buffer }[], rows: number): Buffer {
  const out: Buffer[] = [];
  for (let r = 0; r < rows; r++) {
    for (const b of blocks) {
      const width = b.bytes.length / rows;
      out.push(b.bytes.subarray(r * width, (r + 1) * width));
    }
  }
  return Buffer.concat(out);
}

for (const dtype of DTYPES) {
  describe(`${dtype}: every layer cut into 3 MLP parts`, () => {
    it("plans three one-layer parts per decoder layer, without graphs, with estimates", () => {
      const parts = partsOf(dtype);
      const dec = parts.stages.filter((s) => s.kind === "decoder");
      const t = parts.config.text;
      expect(dec.map((s) => [s.name, s.from, s.to, s.mlp, s.attention])).toEqual(
        Array.from({ length: t.layers }, (_, l) => [
          [`decoder-l${l}.0`, l, l + 1, { from: 0, to: 192 }, true],
          [`decoder-l${l}.1`, l, l + 1, { from: 192, to: 352 }, false],
          [`decoder-l${l}.2`, l, l + 1, { from: 352, to: 512 }, false],
        ]).flat(),
      );
      for (const s of dec) {
        expect(s.graph).toBeUndefined();
        expect(existsSync(join(partsDir(dtype), `${s.name}.onnx`))).toBe(false);
      }
      for (const s of parts.stages) expect(s.estimate).toEqual(estimateStage(parts.config, parts.weights, s, DEFAULT_STAGE_BUDGET));
      expect(parts.budget).toEqual({ maxStageBytes: null, ...DEFAULT_STAGE_BUDGET });
    });

    it("gate/up rows and down columns reassemble to the unsplit tensors byte for byte; norms as in the unsplit file", () => {
      const [whole, parts] = [wholeOf(dtype), partsOf(dtype)];
      const t = whole.config.text;
      const h = t.hidden;
      const dec = whole.stages.find((s) => s.kind === "decoder")!;
      const suffixes = dtype === "fp32" ? ["weight"] : ["qweight", "scales"];
      for (let l = 0; l < t.layers; l++) {
        const mine = parts.stages.filter((s) => s.kind === "decoder" && s.from === l);
        const ref = (name: string) => tensor(wholeDir(dtype), whole, dec, name);
        const got = (name: string) => mine.map((s) => tensor(partsDir(dtype), parts, s, name));
        for (const suffix of suffixes) {
          for (const proj of ["gate", "up"]) {
            const name = `dec.l${l}.${proj}.${suffix}`;
            // int8/int4 [I, blocks, blob] and scales [I·blocks]: rows; fp32 stores Wᵀ [H, I]: columns.
            const joined = dtype === "fp32" ? sideBySide(got(name), h) : Buffer.concat(got(name).map((p) => p.bytes));
            expect(joined.equals(ref(name).bytes), name).toBe(true);
          }
          const name = `dec.l${l}.down.${suffix}`;
          // int8/int4 [H, blocks of I, blob] and scales [H·blocks]: block columns; fp32 stores Wᵀ [I, H]: rows.
          const joined = dtype === "fp32" ? Buffer.concat(got(name).map((p) => p.bytes)) : sideBySide(got(name), h);
          expect(joined.equals(ref(name).bytes), name).toBe(true);
        }
        for (const norm of ["pre_ff_norm", "post_ff_norm"]) {
          for (const p of got(`dec.l${l}.${norm}.weight`)) expect(p.bytes.equals(ref(`dec.l${l}.${norm}.weight`).bytes)).toBe(true);
        }
        const first = mine[0];
        for (const name of ["input_norm.weight", "post_attn_norm.weight", ...suffixes.flatMap((x) => ["q", "k", "v", "o"].map((p) => `attn.${p}.${x}`))]) {
          expect(tensor(partsDir(dtype), parts, first, `dec.l${l}.${name}`).bytes.equals(ref(`dec.l${l}.${name}`).bytes), name).toBe(true);
        }
        for (const s of mine.slice(1)) expect(parts.tensors[s.weights].some((e) => e.name.includes(".attn.") || e.name.includes("input_norm"))).toBe(false);
      }
    });

    it("onnxruntime refuses a model with MLP parts; the kernel runs it as the unsplit model", async () => {
      await expect(loadModel(partsDir(dtype), { vision: "ort", prefill: "ort", decode: "ort" })).rejects.toThrow("this model has MLP-part stages, which only the kernel engine runs");
      const g = loadGolden("paligemma-shapes");
      const kernel = { vision: "kernel", prefill: "kernel", decode: "kernel" } as const;
      const [split, whole] = [await loadModel(partsDir(dtype), kernel), await loadModel(wholeDir(dtype), kernel)];
      const soft = await whole.encodeImage(g.pixelValues);
      const a = await whole.prefill(soft, g.inputIds, { allLogits: true });
      const b = await split.prefill(soft, g.inputIds, { allLogits: true });
      // The parts' sums add the same products in another order: float32 rounding only.
      expect(maxAbsDiff(b.logits, a.logits).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(a.logits)));
      let [sa, sb] = [a.state, b.state];
      for (const id of g.greedyIds.slice(0, 5)) {
        const [ra, rb] = [await whole.step(sa, id), await split.step(sb, id)];
        expect(maxAbsDiff(rb.logits, ra.logits).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(ra.logits)));
        [sa, sb] = [ra.state, rb.state];
      }
    });
  });
}

describe("--max-stage-mb on the shapes model", () => {
  it("a budget below one layer cuts it into MLP parts whose estimates fit, from the CLI, recording the flags", async () => {
    // The context is long enough that half a layer (attention, its KV cache, half the MLP) outweighs any one
    // vision layer, so a budget between half a layer and a whole one cuts every decoder layer and fits the rest.
    const budget = { sessions: 4, context: 1024, prefillRows: 64, adapterBytes: 0 };
    const { config, weights } = wholeOf("int8");
    const est = (s: Parameters<typeof estimateStage>[2]) => estimateStage(config, weights, s, budget).residentBytes;
    const whole = est({ kind: "decoder", from: 0, to: 1 });
    const half = est({ kind: "decoder", from: 0, to: 1, mlp: { from: 0, to: config.text.intermediate / 2 } });
    const mb = Math.floor((whole + half) / 2e4) / 100;
    expect(half).toBeLessThan(mb * 1e6);
    expect(whole).toBeGreaterThan(mb * 1e6);
    expect(est({ kind: "vision", from: 0, to: 1 })).toBeLessThan(mb * 1e6);
    const out = join(work, "cli-budget");
    const flags = ["--stage-sessions", "4", "--stage-context", "1024", "--stage-prefill-rows", "64"];
    await promisify(execFile)("npx", ["tsx", join(REPO, "cli/main.ts"), "convert", SHAPES_MODEL, out, "--dtype", "int8", "--max-stage-mb", String(mb), ...flags], { cwd: REPO });
    const m = parseManifest(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")));
    expect(m.budget).toEqual({ maxStageBytes: Math.floor(mb * 1e6), ...budget });
    const dec = m.stages.filter((s) => s.kind === "decoder");
    expect(dec.length).toBe(2 * m.config.text.layers);
    for (const s of m.stages) expect(s.estimate!.residentBytes, s.name).toBeLessThanOrEqual(mb * 1e6);
    // --parallel-parts --min-mlp-parts 3 --head-shards 4: three parts per layer, each with the attention.
    const par = join(work, "cli-parallel");
    await promisify(execFile)("npx", ["tsx", join(REPO, "cli/main.ts"), "convert", SHAPES_MODEL, par, "--dtype", "int8", "--max-stage-mb", String(mb), ...flags, "--parallel-parts", "--min-mlp-parts", "3", "--head-shards", "4"], { cwd: REPO });
    const p = parseManifest(JSON.parse(readFileSync(join(par, "manifest.json"), "utf8")));
    const parts = p.stages.filter((s) => s.kind === "decoder");
    expect(parts.length).toBe(3 * p.config.text.layers);
    expect(parts.every((s) => s.cut === "parallel" && s.attention === true && s.estimate!.cacheBytes > 0)).toBe(true);
    expect(p.stages.filter((s) => s.kind === "head").length).toBe(Math.max(4, m.stages.filter((s) => s.kind === "head").length));
    for (const s of p.stages) expect(s.estimate!.residentBytes, s.name).toBeLessThanOrEqual(mb * 1e6);
  });

  it("--stage-adapter-mb adds the adapter cache to every vision and decoder estimate and is recorded", async () => {
    const out = join(work, "cli-adapter-budget");
    await promisify(execFile)("npx", ["tsx", join(REPO, "cli/main.ts"), "convert", SHAPES_MODEL, out, "--dtype", "int8", "--max-stage-mb", "60", "--stage-adapter-mb", "2.5"], { cwd: REPO });
    const m = parseManifest(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")));
    expect(m.budget).toEqual({ maxStageBytes: 60e6, ...DEFAULT_STAGE_BUDGET, adapterBytes: 2.5e6 });
    for (const s of m.stages) {
      const without = estimateStage(m.config, m.weights, { kind: s.kind, from: s.from, to: s.to, mlp: s.mlp, attention: s.attention }, DEFAULT_STAGE_BUDGET);
      expect(s.estimate, s.name).toEqual({ ...without, adapterBytes: s.kind === "head" ? 0 : 2.5e6, residentBytes: without.residentBytes + (s.kind === "head" ? 0 : 2.5e6) });
    }
    await expect(promisify(execFile)("npx", ["tsx", join(REPO, "cli/main.ts"), "convert", SHAPES_MODEL, join(work, "bad"), "--max-stage-mb", "60", "--stage-adapter-mb", "-1"], { cwd: REPO })).rejects.toMatchObject({ stderr: expect.stringContaining("--stage-adapter-mb must be a number ≥ 0, got -1") });
  });
});

function wholeOf(dtype: string): Manifest {
  return wholeManifests.get(dtype)!;
}

function partsOf(dtype: string): Manifest {
  return partManifests.get(dtype)!;
}

describe("manifest validation of MLP parts", () => {
  const load = (): Json => JSON.parse(readFileSync(join(partsDir("int8"), "manifest.json"), "utf8"));
  type Json = { stages: { kind: string; mlp: { from: number; to: number }; [k: string]: unknown }[] };
  const dec = (m: Json) => m.stages.filter((s) => s.kind === "decoder");

  it("an older manifest (no estimate, no budget, no parts) stays valid", () => {
    const m = JSON.parse(readFileSync(join(wholeDir("int8"), "manifest.json"), "utf8"));
    delete m.budget;
    for (const s of m.stages) delete s.estimate;
    expect(() => parseManifest(m)).not.toThrow();
  });

  it("only MLP parts may lack a graph", () => {
    const m = JSON.parse(readFileSync(join(wholeDir("int8"), "manifest.json"), "utf8"));
    delete m.stages[0].graph;
    expect(() => parseManifest(m)).toThrow("manifest.json: stage vision-0 has no graph; only MLP-part decoder stages may lack one");
  });

  it("parts must tile each layer's MLP rows, attention in the first part only, blocks whole", () => {
    let m = load();
    dec(m)[1].mlp.from = 160;
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.1 starts at MLP row 160, expected 192");
    m = load();
    m.stages.splice(m.stages.indexOf(dec(m)[2]), 1);
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder layer 0's MLP parts cover rows [0, 352), expected [0, 512)");
    m = load();
    dec(m)[1].attention = true;
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.1 computes attention, but only the first part of layer 0 may");
    m = load();
    dec(m)[0].mlp.to = 200;
    dec(m)[1].mlp.from = 200;
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.0 cuts a quantisation block: MLP rows [0, 200), block 32");
    m = load();
    dec(m)[0].to = 2;
    expect(() => parseManifest(m)).toThrow(/decoder-l0.0 is an MLP part over layers \[0, 2\)/);
    m = load();
    m.stages[0].mlp = { from: 0, to: 8 };
    expect(() => parseManifest(m)).toThrow("manifest.json: stage vision-0: only decoder stages have mlp or attention");
  });
  it("a parallel cut: every part says so and holds the attention; a part that does not, or a cut outside parts, is refused", () => {
    const parallel = (): Json => {
      const m = load();
      for (const s of dec(m)) Object.assign(s, { attention: true, cut: "parallel" });
      return m;
    };
    expect(() => parseManifest(parallel())).not.toThrow();
    let m = parallel();
    delete dec(m)[1].cut;
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.1 has cut (none), but layer 0's first part has parallel");
    m = parallel();
    dec(m)[2].attention = false;
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.2 is a parallel part of layer 0 and must compute its attention");
    m = parallel();
    dec(m)[0].cut = "sequential";
    expect(() => parseManifest(m)).toThrow("manifest.json: decoder stage decoder-l0.1 has cut parallel, but layer 0's first part has sequential");
    m = load();
    m.stages[0].cut = "parallel";
    expect(() => parseManifest(m)).toThrow("manifest.json: stage vision-0: only the MLP parts of a cut decoder layer have a cut");
  });
});
