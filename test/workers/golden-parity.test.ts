/**
 * The shapes golden inside workerd: the same runtime code as the Node parity test (test/golden), loaded the way
 * the workers load it (onnxruntime's compiled WASM module, model files from static assets), must reproduce
 * transformers' numbers with the same tolerance: logits within 1e-4 × max(1, max|golden|), exact greedy ids.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { Engine } from "../../shared/engine/engine.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { workersModel } from "../../shared/worker/workers-model.ts";
import { fromBase64 } from "./support.ts";

const f32 = (b64: string) => {
  const b = fromBase64(b64);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

function worst(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const path of ["ort", "kernel"] as const) it(`paligemma-shapes (every phase on ${path}): soft tokens, full-sequence logits and greedy steps match transformers in workerd`, async () => {
  const { engine } = await workersModel(new ModelCache<ServingModel>(), env, { tokenizer: false, backends: { vision: path, prefill: path, decode: path } });
  const idsBytes = fromBase64(env.GOLDEN_INPUT_IDS);
  const ids = Array.from(new BigInt64Array(idsBytes.buffer, idsBytes.byteOffset, idsBytes.byteLength / 8), Number);
  const golden = f32(env.GOLDEN_LOGITS);
  const vocab = engine.config.text.vocab;
  const tol = 1e-4 * Math.max(1, ...Array.from(golden, Math.abs));

  const soft = await engine.encodeImage(f32(env.GOLDEN_PIXEL_VALUES));
  expect(worst(soft.data, f32(env.GOLDEN_PROJECTOR_OUTPUT))).toBeLessThanOrEqual(1e-4);
  // workerd runs the relaxed-SIMD build (fused multiply-adds), which Node's parity tests cannot.
  if (path === "kernel") expect((await (engine as Engine).kernelMemory()).vision!.flavor).toBe("relaxed");

  const { logits } = await engine.prefill(soft, ids, { allLogits: true });
  expect(worst(logits, golden)).toBeLessThanOrEqual(tol);

  const expected = JSON.parse(env.GOLDEN_GREEDY).generated_ids as number[];
  const steps = f32(env.GOLDEN_STEP_LOGITS);
  let { state, logits: last } = await engine.prefill(soft, ids);
  const got: number[] = [];
  for (let k = 0; k < expected.length; k++) {
    expect(worst(last, steps.subarray(k * vocab, (k + 1) * vocab))).toBeLessThanOrEqual(tol);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (last[i] > last[best]) best = i;
    got.push(best);
    if (k + 1 < expected.length) ({ state, logits: last } = await engine.step(state, best));
  }
  expect(got).toEqual(expected);
});
