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
 * the greedy ids must be the float GEMM's. "int8-a8" runs int8 weights through gemm-q8.ts with the same int8
 * activations (and int4 ones as "int8", asserted bit for bit): measured 0.052 / 0.040 / 0.061 on the soft tokens
 * and 0.128 / 0.099 / 0.220 on the logits, within "int8"'s bounds, but paligemma1-tiny's greedy ids flip at
 * the 10th token (to int7's): asserted as measured, and why int8 weights keep int16 activations by default.
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
const BOUND = { int16: { vision: 2e-3, logits: 5e-3 }, int7: { vision: 0.3, logits: 0.75 }, int8: { vision: 0.1, logits: 0.3 }, "int8-a8": { vision: 0.1, logits: 0.3 } } as const;
// int8 weights × int8 activations on paligemma1-tiny: the float GEMM's ids up to the 10th, then what int7 gives
// too (…, 192, 192, 371, 196 with the float GEMM): the measured reason "int8-a8" is not the default.
const A8_FLIP = [68, 206, 207, 61, 295, 97, 338, 12, 192, 76, 29, 310];
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
        const [f, q, q7, q8, a8] = await Promise.all((["float", "int16", "int7", "int8", "int8-a8"] as GemmCompute[]).map(async (gemm) => run(await loadModel(dir, KERNEL, { gemm }), name)));
        // "int8" is "int16" for int8 weights, and "int8-a8" is "int8" for int4 ones, to the bit.
        const [same, as] = dtype === "int8" ? [q8, q] : [a8, q8];
        expect(Array.from(same.soft)).toEqual(Array.from(as.soft));
        expect(Array.from(same.logits)).toEqual(Array.from(as.logits));
        for (const [gemm, r] of [["int16", q], ["int7", q7], ["int8", q8], ["int8-a8", a8]] as const) {
          const vision = maxAbsDiff(r.soft, f.soft);
          const logits = maxAbsDiff(r.logits, f.logits);
          expect(vision.max, `${gemm}: soft tokens worst at ${vision.at}`).toBeLessThanOrEqual(BOUND[gemm].vision);
          expect(logits.max, `${gemm}: logits worst at row ${Math.floor(logits.at / g.vocab)}, id ${logits.at % g.vocab}`).toBeLessThanOrEqual(BOUND[gemm].logits);
          if (gemm === "int8-a8" && name === "paligemma1-tiny" && dtype === "int8") expect(r.ids, gemm).toEqual(A8_FLIP);
          else if (gemm !== "int7") expect(r.ids, gemm).toEqual(f.ids);
        }
      });
    }
  }
});
