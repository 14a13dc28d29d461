/**
 * Decoder states of the kernel engine, which every session owns: a prefill's state owns a fresh KV sequence,
 * steps grow it in place, branching from the prefill or an earlier step cuts it back (later states go stale and
 * say so), the cache grows past its first capacity, keys/values read back in onnxruntime's layout, and
 * `release()` gives the memory back. Several sequences in one engine, stepped interleaved, each equal the same
 * run alone. Uses the committed default model (paligemma-shapes: Gemma 2, two KV heads, sliding window), with
 * onnxruntime's steps as reference.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import type { Engine } from "../../shared/engine/engine.ts";
import type { DecoderState, PrefillResult, SoftTokens } from "../../shared/engine/types.ts";
import { KernelDecoderState } from "../../shared/kernel/state.ts";
import { loadGolden, maxAbsDiff, REPO } from "../helpers/golden.ts";

const MODEL = join(REPO, "model-shards/paligemma-shapes");
const TOL = 1e-4;
const ORT = { vision: "ort", prefill: "ort", decode: "ort" } as const;
const KERNEL = { vision: "kernel", prefill: "kernel", decode: "kernel" } as const;

let ort: Engine;
let kernel: Engine;
let soft: SoftTokens;
let ids: number[];
let ortPrefill: PrefillResult;

beforeAll(async () => {
  ort = await loadModel(MODEL, ORT);
  kernel = await loadModel(MODEL, KERNEL);
  const g = loadGolden("paligemma-shapes");
  ids = g.inputIds;
  soft = await ort.encodeImage(g.pixelValues);
  ortPrefill = await ort.prefill(soft, ids);
});

/** Feeds `ids` one by one from `state`; returns every step's logits and the last state. */
async function run(model: Engine, state: DecoderState, feed: number[]): Promise<{ logits: Float32Array[]; state: DecoderState }> {
  const logits: Float32Array[] = [];
  for (const id of feed) {
    const r = await model.step(state, id);
    logits.push(r.logits);
    state = r.state;
  }
  return { logits, state };
}

function expectClose(a: Float32Array[], b: Float32Array[], what: string): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, k) => {
    const d = maxAbsDiff(x, b[k]);
    expect(d.max, `${what}: step ${k}, worst at ${d.at}`).toBeLessThanOrEqual(TOL);
  });
}

describe("kernel decoder states", () => {
  it("branch from the prefill and from an earlier step, each equal to onnxruntime's; stale states say so", async () => {
    const p = await kernel.prefill(soft, ids);
    expect(p.state).toBeInstanceOf(KernelDecoderState);
    expect(maxAbsDiff(p.logits, ortPrefill.logits).max).toBeLessThanOrEqual(TOL);
    const a = await run(kernel, p.state, [5, 6, 7]);
    const b = await run(kernel, p.state, [9, 10]); // cuts the sequence back to the prompt
    expectClose(a.logits, (await run(ort, ortPrefill.state, [5, 6, 7])).logits, "branch a");
    expectClose(b.logits, (await run(ort, ortPrefill.state, [9, 10])).logits, "branch b");
    await expect(kernel.step(a.state, 8)).rejects.toThrow(/stale/);

    const mid = (await run(kernel, p.state, [5])).state;
    const c1 = await run(kernel, mid, [11, 12]);
    const c2 = await run(kernel, mid, [13]);
    const ortMid = (await run(ort, ortPrefill.state, [5])).state;
    expectClose(c1.logits, (await run(ort, ortMid, [11, 12])).logits, "first branch of a step");
    expectClose(c2.logits, (await run(ort, ortMid, [13])).logits, "second branch of a step");
    expect(() => c1.state.keys).toThrow(/stale/);
    p.state.release?.();
  });

  it("grows the cache past its capacity (the 44-token prompt's cache doubles to 128)", async () => {
    const feed = Array.from({ length: 40 }, (_, i) => 3 + ((i * 7) % 50));
    const p = await kernel.prefill(soft, ids);
    const k = await run(kernel, p.state, feed);
    expectClose(k.logits, (await run(ort, ortPrefill.state, feed)).logits, "after growth");
    expect(k.state.length).toBe(ids.length + feed.length);
    p.state.release?.();
  });

  it("reads keys and values back in onnxruntime's layout", async () => {
    const p = await kernel.prefill(soft, ids);
    const k = await run(kernel, p.state, [20, 21]);
    const o = await run(ort, ortPrefill.state, [20, 21]);
    for (let l = 0; l < kernel.config.text.layers; l++) {
      expect(maxAbsDiff(k.state.keys[l], o.state.keys[l]).max, `keys ${l}`).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(k.state.values[l], o.state.values[l]).max, `values ${l}`).toBeLessThanOrEqual(1e-5);
    }
    await expect(kernel.step(k.state, kernel.config.text.vocab)).rejects.toThrow(/outside the vocabulary/);
    p.state.release?.();
  });

  it("five sequences stepped interleaved in one engine each equal the same run alone, and release gives their memory back", async () => {
    const feeds = Array.from({ length: 5 }, (_, s) => Array.from({ length: 12 }, (_, i) => 3 + ((i * (s + 3)) % 60)));
    const alone: Float32Array[][] = [];
    for (const feed of feeds) {
      const p = await kernel.prefill(soft, ids);
      alone.push((await run(kernel, p.state, feed)).logits);
      p.state.release?.();
    }
    const before = (await kernel.kernelMemory()).text!.liveBytes;
    const prefills = await Promise.all(feeds.map(() => kernel.prefill(soft, ids)));
    const states: DecoderState[] = prefills.map((p) => p.state);
    const got: Float32Array[][] = feeds.map(() => []);
    for (let i = 0; i < 12; i++) {
      for (let s = 0; s < feeds.length; s++) {
        const r = await kernel.step(states[s], feeds[s][i]);
        got[s].push(r.logits);
        states[s] = r.state;
      }
    }
    feeds.forEach((_, s) => got[s].forEach((l, i) => expect(maxAbsDiff(l, alone[s][i]).max, `sequence ${s}, step ${i}`).toBe(0)));
    const held = (await kernel.kernelMemory()).text!.liveBytes;
    const t = kernel.config.text;
    expect(held - before).toBeGreaterThanOrEqual(5 * 2 * t.layers * t.kvHeads * 64 * t.headDim * 4); // five caches of ≥ 64 positions
    for (const p of prefills) p.state.release?.();
    expect((await kernel.kernelMemory()).text!.liveBytes).toBe(before);
    expect(() => states[0].keys).toThrow(/stale/);
  });

  it("reports the kernel instance's memory: weights once, in the stored format", async () => {
    const m = (await kernel.kernelMemory()).text!;
    const t = kernel.config.text;
    const weights = t.layers * 4 * (2 * t.heads * t.headDim * t.hidden + 2 * t.kvHeads * t.headDim * t.hidden + 3 * t.hidden * t.intermediate) + 4 * t.vocab * t.hidden;
    expect(m.weightBytes).toBe(weights);
    expect(m.memoryBytes).toBeGreaterThanOrEqual(m.weightBytes + m.scratchBytes);
    expect(kernel.memory()).toMatchObject({ backends: KERNEL, onnxruntime: false });
  });
});
