/**
 * The kernel prefill's row chunks and MLP column blocks change only the order of float32 sums: a prompt longer
 * than one row chunk (PREFILL_CHUNK) and an MLP computed 64 intermediate columns at a time give the default's
 * logits and cache within float rounding, for float32 and int8 weights (column blocks on quantisation blocks),
 * with the float and the integer GEMM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { PREFILL_CHUNK } from "../../shared/kernel/prefill.ts";
import { loadGolden, maxAbs, maxAbsDiff, SHAPES_MODEL } from "../helpers/golden.ts";

const KERNEL = { vision: "kernel", prefill: "kernel", decode: "kernel" } as const;
const work = mkdtempSync(join(tmpdir(), "pg-prefill-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("kernel prefill blocking", () => {
  for (const [dtype, gemm] of [["fp32", "float"], ["int8", "float"], ["int8", "int16"]] as const) {
    it(`${dtype} (${gemm} GEMM): 64-column MLP blocks and several row chunks equal the default`, async () => {
      const dir = join(work, `${dtype}-${gemm}`);
      await convert(SHAPES_MODEL, dir, { dtype });
      const g = loadGolden("paligemma-shapes");
      // the integer GEMM quantises activations per weight block, so blocking on block boundaries rounds them alike
      const plain = await loadModel(dir, KERNEL, { gemm });
      const blocked = await loadModel(dir, KERNEL, { mlpColumns: 64, gemm });
      const soft = await plain.encodeImage(g.pixelValues);
      // A prompt of more than two row chunks: the golden prompt's text repeated after its image tokens.
      const text = g.inputIds.slice(soft.tokens);
      const ids = [...g.inputIds.slice(0, soft.tokens), ...Array.from({ length: Math.ceil((2 * PREFILL_CHUNK + 5) / text.length) }, () => text).flat()];
      expect(ids.length).toBeGreaterThan(2 * PREFILL_CHUNK);
      const a = await plain.prefill(soft, ids, { allLogits: true });
      const b = await blocked.prefill(soft, ids, { allLogits: true });
      // Integer GEMM: a float-order difference can move an activation across a rounding boundary (one level =
      // 1/16383 of its block's maximum), so blocked and unblocked differ by a few levels, not by float rounding.
      const tol = gemm === "float" ? { logits: 1e-5, keys: 1e-4 } : { logits: 2e-4, keys: 1e-3 };
      expect(maxAbsDiff(b.logits, a.logits).max).toBeLessThanOrEqual(tol.logits * Math.max(1, maxAbs(a.logits)));
      for (let l = 0; l < plain.config.text.layers; l++) expect(maxAbsDiff(b.state.keys[l], a.state.keys[l]).max).toBeLessThanOrEqual(tol.keys);
      // The same prompt through onnxruntime (one bidirectional block) agrees too.
      const ort = await loadModel(dir, { vision: "ort", prefill: "ort", decode: "ort" });
      const o = await ort.prefill(soft, ids, { allLogits: true });
      // (the integer GEMM within its bound of the float one, test/kernel/gemm-parity.test.ts)
      expect(maxAbsDiff(a.logits, o.logits).max).toBeLessThanOrEqual((gemm === "float" ? 1e-4 : 5e-3) * Math.max(1, maxAbs(o.logits)));
    });
  }
});
