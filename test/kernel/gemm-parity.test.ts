/**
 * The integer GEMMs (shared/kernel/gemm.ts "int16", and "int8", the default) against the float32 GEMM over
 * the same stored weights ("float", MatMulNBits accuracy_level 0 semantics), all in the kernel module, on every
 * golden at int8 and int4: soft tokens, full-prompt logits and greedy decoding. Measured (docs/kernels.md): the
 * "int16" GEMM moves the soft tokens by at most 9.1e-4 and the logits by at most 1.7e-3, against 0.12–2.2
 * that the weight quantisation itself costs against transformers' logits; bounds here about 2× that (2e-3,
 * 5e-3), and the greedy ids must be the float GEMM's. The 7-bit variant ("int7", relaxed 8-bit dot products)
 * moves them by up to 0.19 and 0.48 (bounds 0.3, 0.75) and flips paligemma1-tiny's int8 greedy ids: too coarse
 * for the default, measured here so that the choice stays backed by numbers. "int8" (int8 activations, the
 * default) runs int8 weights exactly as "int16" (asserted bit for bit) and int4 weights through gemm-q4.ts:
 * measured 0.040 / 0.039 / 0.069 on the soft tokens and 0.155 / 0.106 / 0.172 on the logits (paligemma1-tiny,
 * paligemma2-tiny, paligemma-shapes), the size of decode's own int8-activation error (test/kernel/parity.test.ts:
 * ≤ 0.17 for int4), against 1.9–2.2 that int4 weights cost against transformers; bounds 0.1 and 0.3, and
 * the greedy ids must be the float GEMM's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import type { Engine } from "../../shared/engine/engine.ts";
import type { GemmCompute } from "../../shared/kernel/gemm.ts";
import { argmax, GOLDEN_CASES, loadGolden, maxAbsDiff, type GoldenCase } from "../helpers/golden.ts";

const KERNEL = { vision: "kernel", prefill: "kernel", decode: "kernel" } as const;
const BOUND = { int16: { vision: 2e-3, logits: 5e-3 }, int7: { vision: 0.3, logits: 0.75 }, int8: { vision: 0.1, logits: 0.3 } } as const;
const work = mkdtempSync(join(tmpdir(), "pg-gemmq-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(model: Engine, name: GoldenCase) {
  const g = loadGolden(name);
  const soft = await model.encodeImage(g.pixelValues);
  const all = await model.prefill(soft, g.inputIds, { allLogits: true });
  let { state, logits } = await model.prefill(soft, g.inputIds);
  const ids: number[] = [];
  for (let k = 0; k < g.greedyIds.length; k++) {
    ids.push(argmax(logits));
    if (k + 1 < g.greedyIds.length) ({ state, logits } = await model.step(state, ids[k]));
  }
  return { soft: soft.data, logits: all.logits, ids };
}

describe("integer GEMM vs float32 GEMM on the goldens", () => {
  for (const name of GOLDEN_CASES) {
    for (const dtype of ["int8", "int4"] as const) {
      it(`${name} ${dtype}`, async () => {
        const g = loadGolden(name);
        const dir = join(work, `${name}-${dtype}`);
        await convert(g.dir, dir, { dtype });
        const [f, q, q7, q8] = await Promise.all((["float", "int16", "int7", "int8"] as GemmCompute[]).map(async (gemm) => run(await loadModel(dir, KERNEL, { gemm }), name)));
        if (dtype === "int8") {
          // int8 weights: "int8" is "int16", to the bit.
          expect(Array.from(q8.soft)).toEqual(Array.from(q.soft));
          expect(Array.from(q8.logits)).toEqual(Array.from(q.logits));
        }
        for (const [gemm, r] of [["int16", q], ["int7", q7], ["int8", q8]] as const) {
          const vision = maxAbsDiff(r.soft, f.soft);
          const logits = maxAbsDiff(r.logits, f.logits);
          expect(vision.max, `${gemm}: soft tokens worst at ${vision.at}`).toBeLessThanOrEqual(BOUND[gemm].vision);
          expect(logits.max, `${gemm}: logits worst at row ${Math.floor(logits.at / g.vocab)}, id ${logits.at % g.vocab}`).toBeLessThanOrEqual(BOUND[gemm].logits);
          if (gemm !== "int7") expect(r.ids, gemm).toEqual(f.ids);
        }
      });
    }
  }
});
