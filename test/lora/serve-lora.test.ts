/**
 * Serving LoRA adapters in the kernel, unmerged, in Node: the base with an adapter gives the logits of the
 * adapter's merged checkpoint (within 1e-4 × max(1, max|logit|), the goldens' bound) and the same greedy ids, in
 * vision, prefill and decode; a model cut into MLP parts gives what the whole model gives; requests with different
 * adapters interleave on one engine; adapters past the byte budget are dropped least recently used first.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { convert } from "../../converter/convert.ts";
import { loadModel } from "../../cli/node-runtime.ts";
import { loadTokenizer } from "../../cli/model-io.ts";
import { withAdapter } from "../../shared/engine/adapted.ts";
import type { Engine } from "../../shared/engine/engine.ts";
import { KERNEL_BACKENDS } from "../../shared/engine/engine.ts";
import type { DecoderState } from "../../shared/engine/types.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { preprocessImage } from "../../shared/image/index.ts";
import { provideImageCodecsForNode } from "../../shared/image/codecs-node.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { argmax, loadGolden, maxAbs, maxAbsDiff, SHAPES_MODEL } from "../helpers/golden.ts";
import { EVAL_PROMPTS, GOLDEN_LORA, prepareLoraModels, type LoraModels } from "./support.ts";

const ADAPTERS = ["shapes-lora-a", "b"] as const;
const g = loadGolden("paligemma-shapes");
let models: LoraModels;
let base: Engine;
const merged = new Map<string, Engine>();
beforeAll(async () => {
  models = await prepareLoraModels();
  base = await loadModel(models.base, KERNEL_BACKENDS);
  for (const a of ADAPTERS) merged.set(a, await loadModel(models.merged[a], KERNEL_BACKENDS));
}, 60_000);
afterAll(() => rmSync(models.work, { recursive: true, force: true }));

/** Full-sequence logits and soft tokens of the golden input through `engine` (with `adapter`). */
async function forward(engine: Engine, adapter: string | null = null) {
  const soft = await engine.encodeImage(g.pixelValues, { adapter });
  const { logits, state } = await engine.prefill(soft, g.inputIds, { allLogits: true, adapter });
  state.release?.();
  return { soft: soft.data, logits };
}

describe.each(ADAPTERS)("adapter %s on the base equals its merged model", (name) => {
  it("soft tokens and full-sequence logits within 1e-4 × max(1, max|logit|)", async () => {
    const got = await forward(base, name);
    const want = await forward(merged.get(name)!);
    const d = maxAbsDiff(got.logits, want.logits);
    expect(d.max, `worst at ${d.at}`).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want.logits)));
    expect(maxAbsDiff(got.soft, want.soft).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want.soft)));
    const changed = maxAbsDiff((await forward(base)).logits, want.logits).max;
    expect(changed, "the adapter changes the logits").toBeGreaterThan(0.1);
  });

  it("decode steps: 8 greedy tokens and their logits", async () => {
    const run = async (engine: Engine, adapter: string | null) => {
      const soft = await engine.encodeImage(g.pixelValues, { adapter });
      const first = await engine.prefill(soft, g.inputIds, { adapter });
      let state: DecoderState = first.state;
      let logits = first.logits;
      const ids: number[] = [];
      const all: Float32Array[] = [];
      for (let i = 0; i < 8; i++) {
        const id = argmax(logits);
        ids.push(id);
        ({ state, logits } = await engine.step(state, id));
        all.push(logits);
      }
      first.state.release?.();
      return { ids, all };
    };
    const got = await run(base, name);
    const want = await run(merged.get(name)!, null);
    expect(got.ids).toEqual(want.ids);
    got.all.forEach((l, i) => expect(maxAbsDiff(l, want.all[i]).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want.all[i]))));
  });

  it("greedy answers of eval prompts equal the merged model's", async () => {
    await provideImageCodecsForNode();
    const tok = loadTokenizer(models.base, base)!;
    const answer = async (engine: Engine, adapter: string | null, image: string, prefix: string) => {
      const pixels = await preprocessImage(new Uint8Array(readFileSync(join(SHAPES_MODEL, "eval", image))), engine.manifest.preprocess, { maxPixels: 1e6 });
      const e = withAdapter(engine, adapter);
      const soft = await e.encodeImage(pixels);
      const ids = buildPromptIds(tok, prefix, engine.config.imageTokens, engine.config.tokens);
      const r = await generateAll(e, soft, ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [engine.config.tokens.eos], mask: vocabMask(engine.manifest), tokenizer: tok });
      r.prefill.state.release?.();
      return r.ids;
    };
    let differ = 0;
    for (const [image, prefix] of EVAL_PROMPTS) {
      const want = await answer(merged.get(name)!, null, image, prefix);
      expect(await answer(base, name, image, prefix), `${image}: ${prefix}`).toEqual(want);
      if ((await answer(base, null, image, prefix)).join() !== want.join()) differ++;
    }
    expect(differ, "some answers change with the adapter").toBeGreaterThan(0);
  });
});

it("a model cut into MLP parts, with the adapter cut like it, gives the whole model's logits", async () => {
  const parts = join(models.work, "parts");
  await convert(SHAPES_MODEL, parts, { dtype: "fp32", mlpParts: 2, id: "paligemma-shapes" });
  await convertAdapter(models.peftB, join(parts, "adapters/b"));
  await convertAdapter(GOLDEN_LORA, join(parts, "adapters/shapes-lora-a"));
  const cut = await loadModel(parts, KERNEL_BACKENDS, { mlpColumns: 128 });
  for (const a of ADAPTERS) {
    const want = await forward(merged.get(a)!);
    const got = await forward(cut, a);
    expect(maxAbsDiff(got.logits, want.logits).max, a).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want.logits)));
  }
});

it("requests with different adapters (and none) interleave on one engine, each as it is alone", async () => {
  const names = [null, "shapes-lora-a", "b"] as const;
  const alone = new Map<string | null, number[][]>();
  const steps = async (engine: Engine, adapter: string | null, states: Map<string | null, DecoderState>, out: Map<string | null, number[][]>) => {
    const { state, logits } = await engine.step(states.get(adapter)!, argmax(out.get(adapter)!.at(-1)!));
    states.set(adapter, state);
    out.get(adapter)!.push(Array.from(logits));
  };
  for (const a of names) {
    const e = await loadModel(models.base, KERNEL_BACKENDS);
    const first = await e.prefill(await e.encodeImage(g.pixelValues, { adapter: a }), g.inputIds, { adapter: a });
    const out = new Map([[a, [Array.from(first.logits)]]]);
    const states = new Map<string | null, DecoderState>([[a, first.state]]);
    for (let i = 0; i < 4; i++) await steps(e, a, states, out);
    alone.set(a, out.get(a)!);
  }
  const states = new Map<string | null, DecoderState>();
  const out = new Map<string | null, number[][]>();
  for (const a of names) {
    const first = await base.prefill(await base.encodeImage(g.pixelValues, { adapter: a }), g.inputIds, { adapter: a });
    states.set(a, first.state);
    out.set(a, [Array.from(first.logits)]);
  }
  for (let i = 0; i < 4; i++) for (const a of [...names].reverse()) await steps(base, a, states, out);
  for (const a of names) expect(out.get(a), String(a)).toEqual(alone.get(a));
});

it("past the budget the least recently used adapter is dropped, and comes back when asked for", async () => {
  const e = await loadModel(models.base, KERNEL_BACKENDS, { maxAdapterBytes: 450_000 });
  const first = await forward(e, "shapes-lora-a");
  const text = (await e.kernelMemory()).text!;
  expect(text.adapters).toEqual([{ name: "shapes-lora-a", bytes: 442368 }]); // the decoder-0 stage's factors
  await forward(e, "b");
  const held = await e.kernelMemory();
  expect(held.text!.adapters.map((a) => a.name)).toEqual(["b"]);
  expect(held.vision!.adapters.map((a) => a.name)).toEqual(["shapes-lora-a", "b"]); // 98,304 + the vision factors of b: under the budget
  expect(e.memory().adapterBytes).toBe(held.text!.adapterBytes + held.vision!.adapterBytes);
  expect((await forward(e, "shapes-lora-a")).logits).toEqual(first.logits);
  expect((await e.kernelMemory()).text!.adapters.map((a) => a.name)).toEqual(["shapes-lora-a"]);
});

it("an unknown adapter is a 404 naming it; adapters on an onnxruntime phase are refused", async () => {
  await expect(base.prefill({ data: new Float32Array(36 * 192), tokens: 36, dim: 192 }, g.inputIds, { adapter: "nope" })).rejects.toMatchObject({ status: 404, param: "adapter", message: expect.stringMatching(/adapter "nope" is not converted for model paligemma-shapes \(it has paligemma-shapes:shapes-lora-a, paligemma-shapes:b\)/) });
  const ort = await loadModel(models.base, { ...KERNEL_BACKENDS, prefill: "ort" });
  await expect(ort.prefill({ data: new Float32Array(36 * 192), tokens: 36, dim: 192 }, g.inputIds, { adapter: "b" })).rejects.toThrow(/LoRA adapters run in the kernel engine only, and prefill is set to ort/);
});
