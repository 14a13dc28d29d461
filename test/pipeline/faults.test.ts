/**
 * A pipeline's faults and costs, over in-process stages of the shapes model: a decoder stage restarted in the
 * middle of a generation (weights and caches gone) is reloaded and its cache rebuilt by replay, and the tokens
 * are exactly those of an undisturbed run; a stage that stays unreachable is a 503 with retry-after and the
 * engine works again once it is back; a layer cut into MLP parts (run in parallel, summed in part order) keeps
 * the greedy answer; and the calls per token are those of the documented budget (shared/pipeline/budget.ts). A
 * layer cut into parallel parts (each holding the attention and a cache): any part restarted mid-stream is replayed,
 * the tokens unchanged; every part is stepped each token, prefilled once and dropped once, as the budget counts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorData, ServiceError } from "../../shared/errors.ts";
import { generate, type GenerateOptions, type GeneratedToken } from "../../shared/generation/generate.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { callBudget } from "../../shared/pipeline/budget.ts";
import type { SoftTokens } from "../../shared/engine/types.ts";
import { loadGolden, maxAbs, maxAbsDiff, SHAPES_MODEL } from "../helpers/golden.ts";
import { pipelineAt, pipelineOf, run, wholeAt, type TestPipeline } from "./support.ts";
import { convert } from "../../converter/convert.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-faults-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const g = loadGolden("paligemma-shapes");
let p: TestPipeline;
let soft: SoftTokens;
let opts: GenerateOptions;

beforeAll(async () => {
  await initKernelForNode();
  p = await pipelineOf(SHAPES_MODEL, join(work, "split"), { dtype: "int8", mlpParts: 1, headRowsPerStage: 600 });
  soft = await (await wholeAt(join(work, "split"))).encodeImage(g.pixelValues);
  opts = { sampling: { temperature: 0.9, topK: 0, topP: 0.95 }, seed: 3, maxTokens: 12, eos: [], mask: vocabMask(p.manifest), tokenizer: null, topLogprobs: 2 };
});

describe("a pipeline's faults", () => {
  it("a decoder stage restarted mid-stream is reloaded, its cache replayed, the tokens unchanged", async () => {
    const reference = await run(p.engine, soft, g.inputIds, opts);
    for (const victim of ["decoder-l0.0", "decoder-l2.0", `decoder-l${p.manifest.config.text.layers - 1}.0`]) {
      const before = p.engine.replays;
      const got = await run(p.engine, soft, g.inputIds, opts, (t) => t.index === 4 && p.stages.get(victim)!.restart());
      expect(got.tokens, victim).toEqual(reference.tokens);
      expect(p.engine.replays, victim).toBe(before + 1);
      expect((await p.stages.get(victim)!.inner.describe()).loaded).toBe(true);
    }
  });

  it("a stage that stays unreachable is a 503 with retry-after; the engine goes on once it is back", async () => {
    const reference = await run(p.engine, soft, g.inputIds, opts);
    const stage = p.stages.get("head-1")!;
    stage.down = true;
    const failed = await run(p.engine, soft, g.inputIds, opts).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ServiceError);
    expect(errorData(failed)).toMatchObject({ status: 503, type: "unavailable", retry_after_s: 5 });
    await expect(p.engine.check()).rejects.toBeInstanceOf(ServiceError);
    // Down in the middle of a stream: the error surfaces from the step, the sequence survives.
    stage.down = false;
    const mid = await run(p.engine, soft, g.inputIds, opts, (t) => t.index === 3 && (stage.down = true)).catch((e: unknown) => e);
    expect(errorData(mid).status).toBe(503);
    stage.down = false;
    expect((await run(p.engine, soft, g.inputIds, opts)).tokens).toEqual(reference.tokens);
  });

  it("calls per token follow the documented budget", async () => {
    const budget = callBudget(p.manifest);
    const decoder = stagesOf(p.manifest, "decoder").length;
    const head = stagesOf(p.manifest, "head").length;
    expect(budget.perToken).toBe(decoder + head + 1);
    const c = p.engine.calls;
    const t0 = c.total;
    const e0 = c.byMethod.embed ?? 0;
    const greedy = { ...opts, sampling: { temperature: 0, topK: 0, topP: 1 }, maxTokens: 10 };
    await p.engine.check();
    const r = await run(p.engine, soft, g.inputIds, greedy);
    const calls = c.total - t0;
    const embeds = (c.byMethod.embed ?? 0) - e0;
    const steps = r.ids.length - 1;
    // Exactly: the check, the prefill (decoder + head), each step (decoder + head), the embeds (cache misses
    // only) and the drop of the sequence in every attention stage (here: every decoder stage).
    expect(calls).toBe(decoder + head + (decoder + head) + steps * (decoder + head) + embeds + decoder);
    expect(embeds).toBeLessThanOrEqual(head + steps);
    expect(calls).toBeLessThanOrEqual(budget.forTokens(r.ids.length));
  });
});

describe("stages that keep fewer sessions than are decoding", () => {
  it("the least recently used session's cache is dropped and rebuilt by replay: interleaved runs keep their tokens", async () => {
    const tight = await pipelineAt(join(work, "split"), {}, { maxSessions: 1 });
    const a = { ...opts, seed: 11 };
    const b = { ...opts, seed: 12, sampling: { temperature: 0, topK: 0, topP: 1 } };
    const alone = [await run(p.engine, soft, g.inputIds, a), await run(p.engine, soft, g.inputIds, b)];
    // Two generations stepping in turn over stages that hold one session each: every step evicts the other.
    const [ga, gb] = [generate(tight.engine, soft, g.inputIds, a), generate(tight.engine, soft, g.inputIds, b)];
    const got: GeneratedToken[][] = [[], []];
    const done = [false, false];
    while (!done[0] || !done[1]) {
      for (const [i, it] of [ga, gb].entries()) {
        if (done[i]) continue;
        const n = await it.next();
        if (n.done) done[i] = true;
        else got[i].push(n.value);
      }
    }
    expect(got[0]).toEqual(alone[0].tokens);
    expect(got[1]).toEqual(alone[1].tokens);
    expect(tight.engine.replays).toBeGreaterThan(10);
  });
});

describe("a layer cut into MLP parts", () => {
  it("parts in parallel, summed in part order: logits within 1e-4 scaled, the same greedy ids", async () => {
    const split = await pipelineOf(SHAPES_MODEL, join(work, "parts"), { dtype: "int8", mlpParts: 3, headRowsPerStage: 800 });
    expect(stagesOf(split.manifest, "decoder").length).toBe(3 * split.manifest.config.text.layers);
    await convert(SHAPES_MODEL, join(work, "whole"), { dtype: "int8" });
    const whole = await wholeAt(join(work, "whole"));
    const a = await whole.prefill(soft, g.inputIds);
    const b = await split.engine.prefill(soft, g.inputIds);
    expect(maxAbsDiff(b.logits, a.logits).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(a.logits)));
    const greedy = { ...opts, sampling: { temperature: 0, topK: 0, topP: 1 }, maxTokens: g.greedyIds.length };
    expect((await run(split.engine, soft, g.inputIds, greedy)).ids).toEqual(g.greedyIds);
    // Deterministic: the same run twice gives the same logprobs.
    expect((await run(split.engine, soft, g.inputIds, greedy)).tokens).toEqual((await run(split.engine, soft, g.inputIds, greedy)).tokens);
  });
});

describe("a layer cut into parallel parts (each holding the attention)", () => {
  it("a part restarted mid-stream is replayed with the others; calls per token follow the budget; drops reach every part", async () => {
    const par = await pipelineOf(SHAPES_MODEL, join(work, "parallel"), { dtype: "int8", mlpParts: 3, parallelParts: true, headRowsPerStage: 800 });
    const decoder = stagesOf(par.manifest, "decoder").length;
    const head = stagesOf(par.manifest, "head").length;
    expect(decoder).toBe(3 * par.manifest.config.text.layers);
    const reference = await run(par.engine, soft, g.inputIds, opts);
    for (const victim of ["decoder-l0.1", "decoder-l1.2", "decoder-l1.0"]) {
      const before = par.engine.replays;
      const got = await run(par.engine, soft, g.inputIds, opts, (t) => t.index === 4 && par.stages.get(victim)!.restart());
      expect(got.tokens, victim).toEqual(reference.tokens);
      expect(par.engine.replays, victim).toBe(before + 1);
    }
    // The budget: every part is an attention stage (a prefill, a step per token, a drop each).
    const budget = callBudget(par.manifest);
    expect(budget.perToken).toBe(decoder + head + 1);
    const c = par.engine.calls;
    const [t0, e0, d0] = [c.total, c.byMethod.embed ?? 0, c.byMethod.drop ?? 0];
    const greedy = { ...opts, sampling: { temperature: 0, topK: 0, topP: 1 }, maxTokens: 10 };
    await par.engine.check();
    const r = await run(par.engine, soft, g.inputIds, greedy);
    const embeds = (c.byMethod.embed ?? 0) - e0;
    expect(c.total - t0).toBe(decoder + head + (decoder + head) + (r.ids.length - 1) * (decoder + head) + embeds + decoder);
    expect((c.byMethod.drop ?? 0) - d0).toBe(decoder);
    expect(c.total - t0).toBeLessThanOrEqual(budget.forTokens(r.ids.length));
    for (const s of stagesOf(par.manifest, "decoder")) expect((await par.stages.get(s.name)!.inner.describe()).sessions, s.name).toBe(0);
    expect(r.ids).toEqual(g.greedyIds.slice(0, 10)); // the golden's answer, as the sequential cut keeps it
  });
});
