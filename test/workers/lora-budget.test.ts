/**
 * ADAPTER_CACHE_MB inside workerd: two adapters whose decoder factors together pass a 1 MB budget while either
 * alone fits it (shapes-lora-a: 442,368 bytes; `wide`, rank 16 on every decoder projection: 737,280), served from
 * R2 (lora-lru-fixture.ts). Asking for one, then the other, drops the least recently used from the decoder's
 * kernel instance (the engine's adapters list, what a session's info reports, shows which are held); asking for
 * the first again loads it back. Every request still answers as its own model: each adapter its merged
 * checkpoint's logits (within 1e-4 × max(1, max|logit|)) and greedy ids, the base the golden's.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { PaliGemmaEngine } from "../../shared/engine/types.ts";
import { assetsStore } from "../../shared/worker/model-store.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { workersModel } from "../../shared/worker/workers-model.ts";
import { fromBase64 } from "./support.ts";

const LRU_MODEL = "paligemma-shapes-lru";
const f32 = (b64: string) => {
  const b = fromBase64(b64);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const idsBytes = fromBase64(env.GOLDEN_INPUT_IDS);
const ids = Array.from(new BigInt64Array(idsBytes.buffer, idsBytes.byteOffset, idsBytes.byteLength / 8), Number);
const pixels = f32(env.GOLDEN_PIXEL_VALUES);

function worst(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Full-sequence logits of the golden input and 8 greedy ids, with `adapter`. */
async function ask(engine: PaliGemmaEngine, adapter: string | null): Promise<{ logits: Float32Array; greedy: number[] }> {
  const soft = await engine.encodeImage(pixels, { adapter });
  const full = await engine.prefill(soft, ids, { allLogits: true, adapter });
  full.state.release?.();
  const first = await engine.prefill(soft, ids, { adapter });
  let { state, logits } = first;
  const greedy: number[] = [];
  for (let k = 0; k < 8; k++) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    greedy.push(best);
    ({ state, logits } = await engine.step(state, best));
  }
  first.state.release?.();
  return { logits: full.logits, greedy };
}

it("under a budget that holds one adapter the least recently used is dropped and reloaded; each answers as its own model", async () => {
  const assets = assetsStore(env.MODEL_ASSETS!, "paligemma-shapes");
  const files = JSON.parse(env.LRU_FILES) as Record<string, string>;
  const manifest = JSON.parse(new TextDecoder().decode(fromBase64(files["manifest.json"]))) as { files: Record<string, unknown>; adapters: { name: string }[] };
  expect(manifest.adapters.map((a) => a.name)).toEqual(["shapes-lora-a", "wide"]);
  for (const name of Object.keys(manifest.files)) await env.MODEL_BUCKET!.put(`${LRU_MODEL}/${name}`, (await assets.get(name))!);
  for (const [name, b64] of Object.entries(files)) await env.MODEL_BUCKET!.put(`${LRU_MODEL}/${name}`, fromBase64(b64));
  const { engine } = await workersModel(new ModelCache<ServingModel>(), { ...env, MODEL_SOURCE: "r2", MODEL_ID: LRU_MODEL, ADAPTER_CACHE_MB: "1" }, { tokenizer: false, backends: {} });
  const held = () => engine.memory!().adapters!.map((a) => `${a.name}:${a.bytes}`);
  const want = {
    a: { logits: f32(env.LORA_MERGED_LOGITS), greedy: JSON.parse(env.LORA_MERGED_GREEDY) as number[] },
    wide: { logits: f32(env.LRU_WIDE_LOGITS), greedy: JSON.parse(env.LRU_WIDE_GREEDY) as number[] },
    base: { logits: f32(env.GOLDEN_LOGITS), greedy: (JSON.parse(env.GOLDEN_GREEDY) as { generated_ids: number[] }).generated_ids.slice(0, 8) },
  };
  const check = (got: { logits: Float32Array; greedy: number[] }, ref: { logits: Float32Array; greedy: number[] }, what: string) => {
    expect(worst(got.logits, ref.logits), what).toBeLessThanOrEqual(1e-4 * Math.max(1, ...Array.from(ref.logits, Math.abs)));
    expect(got.greedy, what).toEqual(ref.greedy);
  };

  const first = await ask(engine, "shapes-lora-a");
  check(first, want.a, "shapes-lora-a");
  // Vision instance first, then the decoder's: both hold shapes-lora-a.
  expect(held()).toEqual(["shapes-lora-a:98304", "shapes-lora-a:442368"]);

  check(await ask(engine, "wide"), want.wide, "wide");
  expect(worst(want.wide.logits, want.a.logits), "the two adapters differ").toBeGreaterThan(0.1);
  // 442,368 + 737,280 bytes pass 1 MB: the decoder drops shapes-lora-a; wide has no vision factors.
  expect(held()).toEqual(["shapes-lora-a:98304", "wide:737280"]);

  check(await ask(engine, null), want.base, "base (transformers' golden)");
  expect(held()).toEqual(["shapes-lora-a:98304", "wide:737280"]);

  const again = await ask(engine, "shapes-lora-a"); // loaded again, wide dropped
  expect(held()).toEqual(["shapes-lora-a:98304", "shapes-lora-a:442368"]);
  expect(again.logits).toEqual(first.logits);
  check(again, want.a, "shapes-lora-a reloaded");
  expect(engine.memory!().adapterBytes).toBe(98304 + 442368);
});
