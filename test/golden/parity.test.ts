/**
 * Parity with transformers' own PaliGemma (../shared/golden): each golden checkpoint is converted at every
 * weight dtype and run in Node twice: every phase on onnxruntime-web, and every phase in the kernel module (the
 * workers' default). fp32 must match to 1e-4 × max(1, max|golden|) with exact greedy ids; the quantised dtypes
 * must stay within their documented error (README, "Weight formats"), on both paths.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import type { Engine } from "../../shared/engine/engine.ts";
import type { EngineBackends } from "../../shared/engine/types.ts";
import type { WeightDtype } from "../../shared/model/weights.ts";
import { argmax, GOLDEN_CASES, loadGolden, maxAbs, maxAbsDiff, type GoldenCase } from "../helpers/golden.ts";

/** Documented max |logit − golden| per dtype (absolute for fp32 after scaling), and whether greedy ids agree. */
const EXPECT: Record<WeightDtype, { logits: number; vision: number; greedy: readonly GoldenCase[] }> = {
  fp32: { logits: 1e-4, vision: 1e-4, greedy: GOLDEN_CASES },
  fp16: { logits: 0.02, vision: 0.01, greedy: GOLDEN_CASES },
  int8: { logits: 0.35, vision: 0.1, greedy: GOLDEN_CASES },
  int4: { logits: 3.0, vision: 1.5, greedy: ["paligemma-shapes"] },
};

const work = mkdtempSync(join(tmpdir(), "pg-parity-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PATHS: Record<"ort" | "kernel", EngineBackends> = {
  ort: { vision: "ort", prefill: "ort", decode: "ort" },
  kernel: { vision: "kernel", prefill: "kernel", decode: "kernel" },
};
const conversions = new Map<string, Promise<void>>();

async function converted(path: keyof typeof PATHS, name: GoldenCase, dtype: WeightDtype, maxShardMb: number | null = null, headRowsPerStage?: number): Promise<Engine> {
  const out = join(work, `${name}-${dtype}-${maxShardMb ?? "whole"}-${headRowsPerStage ?? "all"}`);
  if (!conversions.has(out)) conversions.set(out, convert(join(loadGolden(name).dir), out, { dtype, maxShardMb, headRowsPerStage }).then(() => undefined));
  await conversions.get(out);
  return loadModel(out, PATHS[path]);
}

/** Greedy decoding with raw argmax, as transformers' generate(do_sample=False); returns ids and per-step logits. */
async function greedy(model: Engine, name: GoldenCase): Promise<{ ids: number[]; steps: Float32Array[] }> {
  const g = loadGolden(name);
  const soft = await model.encodeImage(g.pixelValues);
  let { state, logits } = await model.prefill(soft, g.inputIds);
  const ids: number[] = [];
  const steps: Float32Array[] = [];
  for (let k = 0; k < g.greedyIds.length; k++) {
    steps.push(logits);
    ids.push(argmax(logits));
    if (k + 1 < g.greedyIds.length) ({ state, logits } = await model.step(state, ids[k]));
  }
  return { ids, steps };
}

for (const [path, name] of (["ort", "kernel"] as const).flatMap((p) => GOLDEN_CASES.map((n) => [p, n] as const))) {
  describe(`golden ${name}, ${path === "kernel" ? "all in the kernel module" : "all on onnxruntime-web"}`, () => {
    for (const dtype of ["fp32", "fp16", "int8", "int4"] as const) {
      it(`${dtype}: vision, full-sequence logits and greedy decoding`, async () => {
        const g = loadGolden(name);
        const model = await converted(path, name, dtype);
        const tol = EXPECT[dtype];
        const scale = dtype === "fp32" ? Math.max(1, maxAbs(g.logits)) : 1;

        const soft = await model.encodeImage(g.pixelValues);
        expect([soft.tokens, soft.dim]).toEqual([g.projectorOutput.length / soft.dim, model.config.text.hidden]);
        const vision = maxAbsDiff(soft.data, g.projectorOutput);
        expect(vision.max, `projector output worst at ${vision.at}`).toBeLessThanOrEqual(tol.vision);

        const { logits } = await model.prefill(soft, g.inputIds, { allLogits: true });
        expect(logits.length).toBe(g.inputIds.length * g.vocab);
        const d = maxAbsDiff(logits, g.logits);
        expect(d.max, `logits worst at row ${Math.floor(d.at / g.vocab)}, id ${d.at % g.vocab}`).toBeLessThanOrEqual(tol.logits * scale);

        const run = await greedy(model, name);
        if (tol.greedy.includes(name)) {
          expect(run.ids).toEqual(g.greedyIds);
          run.steps.forEach((step, k) => {
            const s = maxAbsDiff(step, g.stepLogits.subarray(k * g.vocab, (k + 1) * g.vocab));
            expect(s.max, `step ${k} logits worst at id ${s.at}`).toBeLessThanOrEqual(tol.logits * scale);
          });
        } else {
          expect(run.ids).not.toEqual(g.greedyIds); // documented: int4 flips greedy ids on this tiny random model
        }
      });
    }

    it("a --max-shard-mb split model equals the unsplit one exactly", async () => {
      const whole = await converted(path, name, "fp32");
      const budget = name === "paligemma-shapes" ? 2 : 0.2; // ~1 decoder layer per stage
      const split = await converted(path, name, "fp32", budget);
      expect(split.manifest.stages.filter((s) => s.kind === "decoder").length).toBeGreaterThan(1);
      for (const s of split.manifest.stages) expect(split.manifest.files[s.weights].bytes, s.name).toBeLessThanOrEqual(budget * 1e6);
      const a = await greedy(whole, name);
      const b = await greedy(split, name);
      expect(b.ids).toEqual(a.ids);
      a.steps.forEach((s, k) => expect(maxAbsDiff(b.steps[k], s).max).toBe(0));
    });

    it("a vocabulary-split head gives the same logits (to float rounding) and ids", async () => {
      const whole = await converted(path, name, "fp32");
      const split = await converted(path, name, "fp32", null, Math.ceil(whole.config.text.vocab / 3) + 1); // uneven slices
      expect(split.manifest.stages.filter((s) => s.kind === "head").map((s) => s.to - s.from).length).toBe(3);
      const a = await greedy(whole, name);
      const b = await greedy(split, name);
      expect(b.ids).toEqual(a.ids);
      a.steps.forEach((s, k) => expect(maxAbsDiff(b.steps[k], s).max).toBeLessThanOrEqual(1e-5));
    });
  });
}

it("image features follow transformers' convention (projector output / sqrt(H))", async () => {
  const g = loadGolden("paligemma2-tiny");
  const model = await converted("ort", "paligemma2-tiny", "fp32");
  const soft = await model.encodeImage(g.pixelValues);
  const s = Math.fround(Math.sqrt(model.config.text.hidden));
  const d = maxAbsDiff(soft.data.map((v) => Math.fround(v / s)), g.imageFeatures);
  expect(d.max, `worst at ${d.at}`).toBeLessThanOrEqual(2e-5);
});
