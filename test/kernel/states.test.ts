/**
 * Decoder states of the kernel path behave like onnxruntime's immutable ones: branching from a prefill or
 * from an earlier step, sequences recycled by the pool (the state is rebuilt from its origin and ids), cache
 * growth past its capacity, and keys/values read back in onnxruntime's layout. Uses the committed default
 * model (paligemma-shapes: Gemma 2, two KV heads, sliding window), with onnxruntime's steps as reference.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import type { PaliGemmaRuntime } from "../../shared/engine/runtime.ts";
import type { DecoderState, PrefillResult } from "../../shared/engine/types.ts";
import { KernelDecoderState } from "../../shared/kernel/state.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { loadGolden, maxAbsDiff, REPO } from "../helpers/golden.ts";

const MODEL = join(REPO, "model-shards/paligemma-shapes");
const TOL = 1e-4;

let ort: PaliGemmaRuntime;
let prefill: PrefillResult;

beforeAll(async () => {
  await initKernelForNode();
  ort = await loadModel(MODEL);
  const g = loadGolden("paligemma-shapes");
  prefill = await ort.prefill(await ort.encodeImage(g.pixelValues), g.inputIds);
});

/** Feeds `ids` one by one from `state`; returns every step's logits and the last state. */
async function run(model: PaliGemmaRuntime, state: DecoderState, ids: number[]): Promise<{ logits: Float32Array[]; state: DecoderState }> {
  const logits: Float32Array[] = [];
  for (const id of ids) {
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
  it("branches from the prefill and from an earlier step, each equal to onnxruntime's", async () => {
    const kernel = await loadModel(MODEL, { decode: "kernel" });
    const a = await run(kernel, prefill.state, [5, 6, 7]);
    const b = await run(kernel, prefill.state, [9, 10]);
    expectClose(a.logits, (await run(ort, prefill.state, [5, 6, 7])).logits, "branch a");
    expectClose(b.logits, (await run(ort, prefill.state, [9, 10])).logits, "branch b");

    const mid = (await run(kernel, prefill.state, [5])).state; // a state that is then stepped twice
    const c1 = await run(kernel, mid, [11, 12]);
    const c2 = await run(kernel, mid, [13]); // not the tip any more: branches in place
    const ortMid = (await run(ort, prefill.state, [5])).state;
    expectClose(c1.logits, (await run(ort, ortMid, [11, 12])).logits, "first branch of a step");
    expectClose(c2.logits, (await run(ort, ortMid, [13])).logits, "second branch of a step");
    const again = await run(kernel, c1.state, [14]); // c1 went stale when c2 branched: rebuilt by replay
    expectClose(again.logits, (await run(ort, ortMid, [11, 12, 14])).logits.slice(2), "stale state, rebuilt");
  });

  it("rebuilds states whose sequence the pool recycled, and grows the cache past its capacity", async () => {
    const kernel = await loadModel(MODEL, { decode: "kernel", kernel: { maxSequences: 1 } });
    const ids = Array.from({ length: 40 }, (_, i) => 3 + ((i * 7) % 50)); // the 44-token prompt's cache doubles to 128
    const ref = await run(ort, prefill.state, ids);
    let x: DecoderState = prefill.state;
    let y: DecoderState = prefill.state;
    const xs: Float32Array[] = [];
    for (const id of ids.slice(0, 10)) {
      const rx = await kernel.step(x, id); // x and y take turns in the one sequence the pool allows
      const ry = await kernel.step(y, id + 1);
      xs.push(rx.logits);
      x = rx.state;
      y = ry.state;
    }
    expectClose(xs, ref.logits.slice(0, 10), "interleaved with another sequence");
    const rest = await run(kernel, x, ids.slice(10));
    expectClose(rest.logits, ref.logits.slice(10), "after growth");
    expect(rest.state.length).toBe(prefill.state.length + ids.length);
  });

  it("reads keys and values back in onnxruntime's layout, also from a stale state", async () => {
    const kernel = await loadModel(MODEL, { decode: "kernel", kernel: { maxSequences: 1 } });
    const k = await run(kernel, prefill.state, [20, 21]);
    const o = await run(ort, prefill.state, [20, 21]);
    expect(k.state).toBeInstanceOf(KernelDecoderState);
    await run(kernel, prefill.state, [30]); // recycles the only sequence: k.state is stale now
    expect((k.state as KernelDecoderState).isCurrent).toBe(false);
    for (let l = 0; l < kernel.config.text.layers; l++) {
      expect(maxAbsDiff(k.state.keys[l], o.state.keys[l]).max, `keys ${l}`).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(k.state.values[l], o.state.values[l]).max, `values ${l}`).toBeLessThanOrEqual(1e-5);
    }
    await expect(kernel.step(k.state, kernel.config.text.vocab)).rejects.toThrow(/outside the vocabulary/);
  });

  it("reports the kernel instance's memory", async () => {
    const kernel = await loadModel(MODEL, { decode: "kernel" });
    await run(kernel, prefill.state, [1]);
    const m = (await kernel.kernelDecoder()).memory();
    const t = kernel.config.text;
    const weights = t.layers * 4 * (2 * t.heads * t.headDim * t.hidden + 2 * t.kvHeads * t.headDim * t.hidden + 3 * t.hidden * t.intermediate) + 4 * t.vocab * t.hidden;
    expect(m.weightBytes).toBe(weights);
    expect(m.cacheBytes).toBeGreaterThan(0);
    expect(m.memoryBytes).toBeGreaterThanOrEqual(m.weightBytes + m.cacheBytes + m.scratchBytes);
    expect(m.memoryBytes - m.weightBytes).toBeLessThan(4e6); // norms, cache, scratch, allocator slack
  });
});
