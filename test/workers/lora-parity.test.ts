/**
 * The committed model's LoRA adapter inside workerd, loaded as the workers load it (kernel module from the
 * bundle, model and adapter files from static assets): the base with `shapes-lora-a`, unmerged, gives the merged
 * model's numbers (computed in Node, lora-reference.ts): logits within 1e-4 × max(1, max|logit|), the same greedy
 * ids; the engine reports the adapter's factor bytes.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
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

it("shapes-lora-a on the base, unmerged, in workerd: the merged model's logits and greedy ids", async () => {
  const { engine } = await workersModel(new ModelCache<ServingModel>(), env, { tokenizer: false, backends: {} });
  const idsBytes = fromBase64(env.GOLDEN_INPUT_IDS);
  const ids = Array.from(new BigInt64Array(idsBytes.buffer, idsBytes.byteOffset, idsBytes.byteLength / 8), Number);
  const want = f32(env.LORA_MERGED_LOGITS);
  const vocab = engine.config.text.vocab;
  const tol = 1e-4 * Math.max(1, ...Array.from(want, Math.abs));
  const adapter = "shapes-lora-a";
  const soft = await engine.encodeImage(f32(env.GOLDEN_PIXEL_VALUES), { adapter });
  const full = await engine.prefill(soft, ids, { allLogits: true, adapter });
  full.state.release?.();
  expect(worst(full.logits, want)).toBeLessThanOrEqual(tol);
  const base = await engine.prefill(await engine.encodeImage(f32(env.GOLDEN_PIXEL_VALUES)), ids, { allLogits: true });
  base.state.release?.();
  expect(worst(base.logits, want), "the adapter changes the logits").toBeGreaterThan(0.1);

  const greedy = JSON.parse(env.LORA_MERGED_GREEDY) as number[];
  const steps = f32(env.LORA_MERGED_STEPS);
  let { state, logits } = await engine.prefill(soft, ids, { adapter });
  const got: number[] = [];
  for (let k = 0; k < greedy.length; k++) {
    expect(worst(logits, steps.subarray(k * vocab, (k + 1) * vocab))).toBeLessThanOrEqual(tol);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
    got.push(best);
    ({ state, logits } = await engine.step(state, best));
  }
  expect(got).toEqual(greedy);
  expect(engine.memory?.()).toMatchObject({ adapterBytes: 540672, adapters: [{ name: adapter, bytes: 98304 }, { name: adapter, bytes: 442368 }] });
});

it("ADAPTER_CACHE_MB sets each kernel instance's budget; garbage is a deployment error naming it", async () => {
  const cache = new ModelCache<ServingModel>();
  expect(() => workersModel(cache, { ...env, ADAPTER_CACHE_MB: "lots" }, { tokenizer: false, backends: {} })).toThrow(/ADAPTER_CACHE_MB must be an integer ≥ 1, got "lots"/);
  const { engine } = await workersModel(cache, { ...env, ADAPTER_CACHE_MB: "1" }, { tokenizer: false, backends: {} });
  const soft = await engine.encodeImage(f32(env.GOLDEN_PIXEL_VALUES), { adapter: "shapes-lora-a" });
  const idsBytes = fromBase64(env.GOLDEN_INPUT_IDS);
  const ids = Array.from(new BigInt64Array(idsBytes.buffer, idsBytes.byteOffset, idsBytes.byteLength / 8), Number);
  (await engine.prefill(soft, ids, { adapter: "shapes-lora-a" })).state.release?.();
  expect(engine.memory?.().adapterBytes).toBe(540672); // under 1 MB: kept
});
