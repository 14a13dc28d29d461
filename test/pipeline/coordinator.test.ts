/**
 * The coordinator over in-process stages equals the unsplit engine: every golden converted with one decoder
 * layer per stage and the head in 3 vocabulary shards gives bit for bit the logits of the same checkpoint
 * converted whole, hence the same greedy ids and logprobs and the same seeded samples (temperature, top-k,
 * top-p, top logprobs). Every golden cut into 3 parallel MLP parts per layer (each part holding the attention, one
 * hop per layer) gives bit for bit the logits and tokens of the same sequential cut.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import { decoderGroups } from "../../shared/pipeline/groups.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import type { GenerateOptions } from "../../shared/generation/generate.ts";
import { GOLDEN_CASES, loadGolden, SHAPES_MODEL } from "../helpers/golden.ts";
import { pipelineOf, run, wholeAt } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => initKernelForNode());

/** Index of the first differing value, or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

describe.each(GOLDEN_CASES)("pipeline of %s (int8, one layer per stage, 3 head shards)", (name) => {
  it("prefill and step logits, greedy and seeded generations equal the unsplit model's exactly", async () => {
    const g = loadGolden(name);
    const wholeDir = join(work, `${name}-whole`);
    await convert(g.dir, wholeDir, { dtype: "int8" });
    const whole = await wholeAt(wholeDir);
    const vocab = whole.config.text.vocab;
    const p = await pipelineOf(g.dir, join(work, `${name}-split`), { dtype: "int8", mlpParts: 1, headRowsPerStage: Math.ceil(vocab / 3) });
    expect(stagesOf(p.manifest, "decoder").length).toBe(whole.config.text.layers);
    expect(stagesOf(p.manifest, "head").length).toBe(3);

    const soft = await whole.encodeImage(g.pixelValues);
    const a = await whole.prefill(soft, g.inputIds);
    const b = await p.engine.prefill(soft, g.inputIds);
    expect(firstDiff(b.logits, a.logits), "prefill logits").toBe(-1);
    const sa = await whole.step(a.state, g.greedyIds[0]);
    const sb = await p.engine.step(b.state, g.greedyIds[0]);
    expect(firstDiff(sb.logits, sa.logits), "step logits").toBe(-1);
    a.state.release?.();
    b.state.release?.();

    const base: GenerateOptions = { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 7, maxTokens: g.greedyIds.length, eos: [], mask: vocabMask(p.manifest), tokenizer: null, topLogprobs: 3 };
    const greedyWhole = await run(whole, soft, g.inputIds, base);
    const greedyPipe = await run(p.engine, soft, g.inputIds, base);
    expect(greedyPipe.ids).toEqual(greedyWhole.ids);
    expect(greedyPipe.tokens).toEqual(greedyWhole.tokens); // ids, logprobs and top logprobs, exactly
    if (name === "paligemma-shapes") expect(greedyPipe.ids).toEqual(g.greedyIds); // int8 keeps the golden's answer
    for (const sampling of [{ temperature: 1, topK: 0, topP: 1 }, { temperature: 0.8, topK: 5, topP: 0.9 }, { temperature: 1.3, topK: 0, topP: 0.7 }]) {
      for (const seed of [1, 42]) {
        const o = { ...base, sampling, seed, maxTokens: 8 };
        expect((await run(p.engine, soft, g.inputIds, o)).tokens, `${JSON.stringify(sampling)} seed ${seed}`).toEqual((await run(whole, soft, g.inputIds, o)).tokens);
      }
    }
  }, 120_000);
});

describe.each(GOLDEN_CASES)("pipeline of %s with every layer cut into parallel parts (int8, 3 parts each holding the attention)", (name) => {
  it("one hop per layer; logits bit for bit those of the sequential cut, the same greedy and seeded tokens", async () => {
    const g = loadGolden(name);
    const cut = { dtype: "int8", mlpParts: 3, headRowsPerStage: 800 } as const;
    const seq = await pipelineOf(g.dir, join(work, `${name}-seq3`), cut);
    const par = await pipelineOf(g.dir, join(work, `${name}-par3`), { ...cut, parallelParts: true });
    const layers = par.manifest.config.text.layers;
    const parts = stagesOf(par.manifest, "decoder");
    expect(parts.length).toBe(3 * layers);
    expect(parts.every((s) => s.cut === "parallel" && s.attention === true)).toBe(true);
    expect(decoderGroups(parts).map((x) => [x.parallel, x.rest.length])).toEqual(Array.from({ length: layers }, () => [true, 2]));

    const soft = await (await wholeAt(join(work, `${name}-seq3`))).encodeImage(g.pixelValues);
    const a = await seq.engine.prefill(soft, g.inputIds, { allLogits: true });
    const b = await par.engine.prefill(soft, g.inputIds, { allLogits: true });
    expect(firstDiff(b.logits, a.logits), "prefill logits (every row)").toBe(-1);
    const sa = await seq.engine.step(a.state, g.greedyIds[0]);
    const sb = await par.engine.step(b.state, g.greedyIds[0]);
    expect(firstDiff(sb.logits, sa.logits), "step logits").toBe(-1);
    a.state.release?.();
    b.state.release?.();

    const base: GenerateOptions = { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 7, maxTokens: g.greedyIds.length, eos: [], mask: vocabMask(par.manifest), tokenizer: null, topLogprobs: 3 };
    const greedySeq = await run(seq.engine, soft, g.inputIds, base);
    const steps0 = par.engine.calls.byMethod.step ?? 0;
    const greedyPar = await run(par.engine, soft, g.inputIds, base);
    expect(greedyPar.tokens).toEqual(greedySeq.tokens); // ids, logprobs and top logprobs, exactly
    if (name === "paligemma-shapes") expect(greedyPar.ids).toEqual(g.greedyIds); // as the sequential cut keeps it
    expect((par.engine.calls.byMethod.step ?? 0) - steps0).toBe((greedyPar.ids.length - 1) * 3 * layers); // every part, every token
    const o = { ...base, sampling: { temperature: 0.8, topK: 5, topP: 0.9 }, seed: 42, maxTokens: 8 };
    expect((await run(par.engine, soft, g.inputIds, o)).tokens).toEqual((await run(seq.engine, soft, g.inputIds, o)).tokens);
  }, 120_000);
});

describe("vision stages in a pipeline", () => {
  it("the shapes model at --max-shard-mb 2: two vision stages give the unsplit tower's soft tokens bit for bit", async () => {
    const g = loadGolden("paligemma-shapes");
    const p = await pipelineOf(SHAPES_MODEL, join(work, "shapes-2mb"), { dtype: "fp32", maxShardMb: 2 });
    expect(stagesOf(p.manifest, "vision").length).toBe(2);
    await convert(SHAPES_MODEL, join(work, "shapes-one"), { dtype: "fp32" });
    const whole = await wholeAt(join(work, "shapes-one"));
    const a = await whole.encodeImage(g.pixelValues);
    const b = await p.engine.encodeImage(g.pixelValues);
    expect([b.tokens, b.dim]).toEqual([a.tokens, a.dim]);
    expect(firstDiff(b.data, a.data)).toBe(-1);
    expect(p.engine.calls.byMethod.vision).toBe(2);
  });
});
