/**
 * LoRA adapters through the pipeline, in process: the shapes model cut one layer per stage (2 vision stages, 4
 * decoder stages, 3 head shards) and cut into MLP parts, with shapes-lora-a converted into it (so cut like it),
 * served by in-process kernel stages. The adapter's name goes with every prefill, step and vision call; each stage
 * loads its own factors. Against the adapter's merged checkpoint converted on its own: soft tokens and logits
 * within 1e-4 × max(1, max|logit|), the same greedy ids; against the single-isolate adapter path: the same
 * greedy answers of eval prompts. Base and adapter sequences interleave on one pipeline; a restarted stage
 * rebuilds an adapter's sequence by replay with its adapter; generations with two adapters and the base at once,
 * under a stage adapter budget that holds one adapter, each give what they give alone. A parallel cut (each part
 * holding the attention and its factors) gives the sequential cut's logits exactly.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import { loadTokenizer } from "../../cli/model-io.ts";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { convert } from "../../converter/convert.ts";
import { withAdapter } from "../../shared/engine/adapted.ts";
import { KERNEL_BACKENDS, type Engine } from "../../shared/engine/engine.ts";
import type { DecoderState, PaliGemmaEngine } from "../../shared/engine/types.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { provideImageCodecsForNode } from "../../shared/image/codecs-node.ts";
import { preprocessImage } from "../../shared/image/index.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { argmax, loadGolden, maxAbs, maxAbsDiff, SHAPES_MODEL } from "../helpers/golden.ts";
import { EVAL_PROMPTS, GOLDEN_LORA, prepareLoraModels, type LoraModels } from "../lora/support.ts";
import { pipelineAt, run, type TestPipeline } from "./support.ts";

const A = "shapes-lora-a";
const g = loadGolden("paligemma-shapes");
let models: LoraModels;
let single: Engine; // the base in one kernel engine, the adapter unmerged
let merged: Engine; // shapes-lora-a merged, converted on its own
let layers: TestPipeline;
let parts: TestPipeline;

beforeAll(async () => {
  await initKernelForNode();
  models = await prepareLoraModels("pg-lora-pipe-");
  single = await loadModel(models.base, KERNEL_BACKENDS);
  merged = await loadModel(models.merged[A], KERNEL_BACKENDS);
  const cut = async (dir: string, opts: Partial<Parameters<typeof convert>[2]>) => {
    await convert(SHAPES_MODEL, dir, { dtype: "fp32", id: "paligemma-shapes", ...opts });
    await convertAdapter(GOLDEN_LORA, join(dir, "adapters", A));
    return pipelineAt(dir);
  };
  layers = await cut(join(models.work, "layers"), { maxShardMb: 2, headRowsPerStage: 600 });
  parts = await cut(join(models.work, "parts"), { mlpParts: 2 });
}, 120_000);
afterAll(() => rmSync(models.work, { recursive: true, force: true }));

const tol = (want: Float32Array) => 1e-4 * Math.max(1, maxAbs(want));

/** Soft tokens, full-sequence logits and 8 greedy steps of the golden input (with `adapter`). */
async function golden(engine: PaliGemmaEngine, adapter: string | null) {
  const soft = await engine.encodeImage(g.pixelValues, { adapter });
  const full = await engine.prefill(soft, g.inputIds, { allLogits: true, adapter });
  full.state.release?.();
  const first = await engine.prefill(soft, g.inputIds, { adapter });
  let state: DecoderState = first.state;
  let logits = first.logits;
  const ids: number[] = [];
  const steps: Float32Array[] = [logits];
  for (let i = 0; i < 8; i++) {
    ids.push(argmax(logits));
    ({ state, logits } = await engine.step(state, ids.at(-1)!));
    steps.push(logits);
  }
  first.state.release?.();
  return { soft: soft.data, logits: full.logits, ids, steps };
}

describe.each(["layers", "parts"] as const)("shapes-lora-a through a pipeline cut into %s", (cutName) => {
  const p = () => (cutName === "layers" ? layers : parts);

  it("is cut as planned: each decoder stage has its own factor file", () => {
    const m = p().manifest;
    if (cutName === "layers") expect([stagesOf(m, "vision").length, stagesOf(m, "decoder").length, stagesOf(m, "head").length]).toEqual([2, 4, 3]);
    else expect(stagesOf(m, "decoder").map((s) => [s.from, s.mlp?.from])).toEqual([[0, 0], [0, 256], [1, 0], [1, 256], [2, 0], [2, 256], [3, 0], [3, 256]]);
  });

  it("soft tokens, full-sequence logits and 8 greedy steps: the merged model's within 1e-4 scaled", async () => {
    const got = await golden(p().engine, A);
    const want = await golden(merged, null);
    expect(maxAbsDiff(got.soft, want.soft).max).toBeLessThanOrEqual(tol(want.soft));
    const d = maxAbsDiff(got.logits, want.logits);
    expect(d.max, `worst at ${d.at}`).toBeLessThanOrEqual(tol(want.logits));
    expect(got.ids).toEqual(want.ids);
    got.steps.forEach((l, i) => expect(maxAbsDiff(l, want.steps[i]).max, `step ${i}`).toBeLessThanOrEqual(tol(want.steps[i])));
    expect(maxAbsDiff((await golden(p().engine, null)).logits, want.logits).max, "the adapter changes the logits").toBeGreaterThan(0.1);
    // Each stage holds only its own factors; the head shards none. An MLP part also holds gate/up's A and
    // down's B whole (4 layers × 3 × r 8 × H 192 × 4 bytes = 73,728 bytes more than the uncut layers).
    const infos = await Promise.all([...p().stages.values()].map((s) => s.inner.describe()));
    const bytes = (kind: string) => infos.filter((i) => i.kind === kind).reduce((n, i) => n + (i.adapters.find((x) => x.name === A)?.bytes ?? 0), 0);
    expect([bytes("vision"), bytes("decoder"), bytes("head")]).toEqual([98304, cutName === "layers" ? 442368 : 442368 + 73728, 0]);
  });

  it("eval prompts: the greedy answers of the single-isolate adapter path and of the merged model", async () => {
    await provideImageCodecsForNode();
    const tok = loadTokenizer(models.base, single)!;
    const answer = async (engine: PaliGemmaEngine, adapter: string | null, image: string, prefix: string) => {
      const pixels = await preprocessImage(new Uint8Array(readFileSync(join(SHAPES_MODEL, "eval", image))), single.manifest.preprocess, { maxPixels: 1e6 });
      const e = withAdapter(engine, adapter);
      const ids = buildPromptIds(tok, prefix, engine.config.imageTokens, engine.config.tokens);
      const r = await generateAll(e, await e.encodeImage(pixels), ids, { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 24, eos: [engine.config.tokens.eos], mask: vocabMask(single.manifest), tokenizer: tok });
      r.prefill.state.release?.();
      return r.ids;
    };
    let differ = 0;
    for (const [image, prefix] of EVAL_PROMPTS) {
      const want = await answer(single, A, image, prefix);
      expect(await answer(merged, null, image, prefix), `merged: ${image} ${prefix}`).toEqual(want);
      expect(await answer(p().engine, A, image, prefix), `pipeline: ${image} ${prefix}`).toEqual(want);
      const base = await answer(p().engine, null, image, prefix);
      expect(base, `pipeline base: ${image} ${prefix}`).toEqual(await answer(single, null, image, prefix));
      if (base.join() !== want.join()) differ++;
    }
    expect(differ, "some answers change with the adapter").toBeGreaterThan(0);
  }, 120_000);
});

it("base and adapter sequences interleave on one pipeline, each as alone; a restarted stage replays with the adapter", async () => {
  const e = layers.engine;
  const soft = { base: await e.encodeImage(g.pixelValues), lora: await e.encodeImage(g.pixelValues, { adapter: A }) };
  const alone = { base: await golden(e, null), lora: await golden(e, A) };
  const states = { base: await e.prefill(soft.base, g.inputIds), lora: await e.prefill(soft.lora, g.inputIds, { adapter: A }) };
  expect(states.lora.state.adapter).toBe(A);
  const cur: Record<"base" | "lora", { state: DecoderState; logits: Float32Array }> = { base: states.base, lora: states.lora };
  const got = { base: [cur.base.logits], lora: [cur.lora.logits] };
  for (let i = 0; i < 8; i++) {
    if (i === 4) layers.stages.get("decoder-2")!.restart(); // its caches (and adapter factors) are gone
    for (const k of ["lora", "base"] as const) {
      cur[k] = await e.step(cur[k].state, argmax(cur[k].logits));
      got[k].push(cur[k].logits);
    }
  }
  expect(e.replays).toBe(2);
  for (const k of ["base", "lora"] as const) got[k].forEach((l, i) => expect(maxAbsDiff(l, alone[k].steps[i]).max, `${k} ${i}`).toBe(0));
  states.base.state.release?.();
  states.lora.state.release?.();
});

it("two adapters and the base generating at once, under a stage budget of one adapter: each as alone", async () => {
  const dir = join(models.work, "layers");
  await convertAdapter(models.peftB, join(dir, "adapters/b"));
  const tight = await pipelineAt(dir, {}, { maxAdapterBytes: 100_000, maxSessions: 8 }); // a decoder layer's share of shapes-lora-a: 110,592
  const roomy = await pipelineAt(dir);
  const opts = { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: 8, eos: [], mask: vocabMask(tight.manifest), tokenizer: null };
  const gen = async (p: TestPipeline, adapter: string | null) => {
    const e = withAdapter(p.engine, adapter);
    return (await run(e, await e.encodeImage(g.pixelValues), g.inputIds, opts)).tokens;
  };
  const names = [null, A, "b", A, null, "b"];
  const alone = new Map<string | null, unknown>();
  for (const a of new Set(names)) alone.set(a, await gen(roomy, a));
  expect(alone.get(A)).not.toEqual(alone.get("b"));
  const together = await Promise.all(names.map((a) => gen(tight, a)));
  together.forEach((t, i) => expect(t, String(names[i])).toEqual(alone.get(names[i])));
  const stage = tight.stages.get("decoder-1")!.inner;
  expect(stage.stepStats.rows / stage.stepStats.passes, "steps of several sessions ran batched").toBeGreaterThan(1);
  const held = (await stage.describe()).adapters;
  expect(held.length, JSON.stringify(held)).toBe(1); // the budget holds one; the other was dropped
  expect(await gen(tight, held[0].name === A ? "b" : A)).toEqual(alone.get(held[0].name === A ? "b" : A)); // reloaded
});

it("an unknown adapter is a 404 naming it, before any stage call", async () => {
  const before = layers.engine.calls.total;
  await expect(layers.engine.prefill({ data: new Float32Array(36 * 192), tokens: 36, dim: 192 }, g.inputIds, { adapter: "nope" })).rejects.toMatchObject({ status: 404, param: "adapter", message: expect.stringMatching(/adapter "nope" is not converted for model paligemma-shapes \(it has paligemma-shapes:shapes-lora-a\)/) });
  await expect(layers.engine.encodeImage(g.pixelValues, { adapter: "nope" })).rejects.toMatchObject({ status: 404 });
  expect(layers.engine.calls.total).toBe(before);
});

it("a parallel cut (every part holding the attention and its factors) gives the sequential cut's numbers exactly", async () => {
  const dir = join(models.work, "parallel");
  await convert(SHAPES_MODEL, dir, { dtype: "fp32", id: "paligemma-shapes", mlpParts: 2, parallelParts: true });
  await convertAdapter(GOLDEN_LORA, join(dir, "adapters", A));
  const par = await pipelineAt(dir);
  const [got, want] = [await golden(par.engine, A), await golden(parts.engine, A)];
  expect(maxAbsDiff(got.logits, want.logits).max).toBe(0);
  got.steps.forEach((l, i) => expect(maxAbsDiff(l, want.steps[i]).max, `step ${i}`).toBe(0));
  expect(got.ids).toEqual(want.ids);
  // Each part holds the attention's factors whole (4 layers × 4 projections' A and B more than the sequential cut).
  const held = async (p: TestPipeline) => (await Promise.all([...p.stages.values()].map((s) => s.inner.describe()))).reduce((n, i) => n + (i.adapters.find((x) => x.name === A)?.bytes ?? 0), 0);
  expect(await held(par)).toBeGreaterThan(await held(parts));
});
