/**
 * Sequence-parallel and chunked prefill over in-process stages (shared/pipeline/spread.ts): every fp32 golden,
 * its decoder as one stage of all layers, cut into an attention part and an MLP part per layer, and cut into two
 * parallel parts per layer (each holding the attention, each spreading its own blocks over its replicas), prefilled
 * over r = 2 and 3 replicas of every decoder stage and in blocks of a few rows on one replica. The cache the
 * decode steps use (the first replica's) is within 1e-5 of the single-isolate prefill's, the prefill logits too,
 * the greedy ids are the golden's, the other replicas dropped the session, and every replica computed blocks.
 * The image spread over r replicas of every vision stage gives the whole tower's soft tokens within 1e-5.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert, type ConvertOptions } from "../../converter/convert.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { blocksOf, callRows, rowLayerFlops } from "../../shared/pipeline/spread.ts";
import { GOLDEN_CASES, loadGolden } from "../helpers/golden.ts";
import { pipelineAt, run, wholeAt, type TestPipeline } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-spread-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => initKernelForNode());

/** Largest |a − b| and where. */
function worst(a: Float32Array, b: Float32Array): { diff: number; at: number } {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > diff) [diff, at] = [Math.abs(a[i] - b[i]), i];
  return { diff, at };
}

describe("blocks of a chunk", () => {
  it("near-equal, one per replica at least, none over the call budget's rows, replicas in turn", () => {
    expect(blocksOf(10, 3, 100)).toEqual([{ offset: 0, count: 4, replica: 0 }, { offset: 4, count: 3, replica: 1 }, { offset: 7, count: 3, replica: 2 }]);
    expect(blocksOf(10, 2, 3).map((b) => [b.count, b.replica])).toEqual([[3, 0], [3, 1], [2, 0], [2, 1]]);
    expect(blocksOf(2, 4, 100)).toEqual([{ offset: 0, count: 1, replica: 0 }, { offset: 1, count: 1, replica: 1 }]);
  });

  it("the call budget: PaliGemma-3B's 2.2 · 10⁸ flops per row and layer, 2,248 rows per 10 s call at 50 GFLOP/s", () => {
    const config = { text: { hidden: 2048, heads: 8, kvHeads: 1, headDim: 256, intermediate: 16384 } } as never;
    expect(rowLayerFlops(config, 270)).toBe(2 * (2048 * 10 * 256 + 2048 * 2048 + 3 * 2048 * 16384 + 2 * 2048 * 270));
    expect(callRows(config, 270)).toBe(2248);
    expect(callRows(config, 270, 1000)).toBe(224);
  });
});

const PLANS: [string, ConvertOptions][] = [
  ["all layers in one stage", { dtype: "fp32" }],
  ["each layer an attention part and an MLP part", { dtype: "fp32", mlpParts: 2 }],
  ["each layer in 2 parallel parts, each holding the attention", { dtype: "fp32", mlpParts: 2, parallelParts: true }],
];

describe.each(GOLDEN_CASES)("spread prefill of %s (fp32)", (name) => {
  it.each(PLANS)("%s: r = 2, r = 3 and blocks of 7 rows give the single isolate's cache, soft tokens and ids", async (plan, opts) => {
    const g = loadGolden(name);
    const wholeDir = join(work, `${name}-whole`);
    await convert(g.dir, wholeDir, { dtype: "fp32" });
    const whole = await wholeAt(wholeDir);
    const dir = join(work, `${name}-${opts.mlpParts ?? 0}${opts.parallelParts ? "p" : ""}`);
    await convert(g.dir, dir, opts);
    const soft = await whole.encodeImage(g.pixelValues);
    const ref = await whole.prefill(soft, g.inputIds);
    const n = g.inputIds.length;
    const sevenRows = (7.5 * rowLayerFlops(whole.config, n)) / 50e6; // the call budget (ms) of 7 rows per call
    for (const [replicas, prefillCallMs] of [[2, undefined], [3, undefined], [1, sevenRows]] as const) {
      const p: TestPipeline = await pipelineAt(dir, { newKey: () => "s", ...(prefillCallMs ? { prefillCallMs } : {}) }, { replicas });
      const label = `${plan}, r = ${replicas}${prefillCallMs ? ", 7-row blocks" : ""}`;
      const got = await p.engine.prefill(soft, g.inputIds);
      expect(worst(got.logits, ref.logits).diff, `${label}: logits`).toBeLessThanOrEqual(1e-5);
      const decoders = stagesOf(p.manifest, "decoder").filter((s) => s.attention !== false);
      for (const s of decoders) {
        const cache = p.stages.get(s.name)!.inner.readCache("s");
        expect(cache?.length, `${label}: ${s.name} cache length`).toBe(n);
        for (let l = s.from; l < s.to; l++) {
          for (const table of ["keys", "values"] as const) {
            const w = worst(cache![table][l - s.from], ref.state[table][l]);
            expect(w.diff, `${label}: ${s.name} layer ${l} ${table}, worst at ${w.at}`).toBeLessThanOrEqual(1e-5);
          }
        }
        for (const r of p.replicas.get(s.name)!) {
          expect(r.inner.readCache("s"), `${label}: a replica of ${s.name} dropped the session`).toBeNull();
          expect(r.calls.prefillAttend ?? 0, `${label}: a replica of ${s.name} attended blocks`).toBeGreaterThan(0);
        }
        const calls = p.stages.get(s.name)!.calls;
        const blocks = Math.max(replicas, prefillCallMs ? Math.ceil(n / 7) : 0);
        expect(calls.prefillKeys, `${label}: ${s.name} started its blocks`).toBe(Math.ceil(blocks / replicas));
        expect(calls.prefill ?? 0, `${label}: ${s.name} had no whole-chunk prefill`).toBe(0);
      }
      got.state.release?.();
      // The image spread over the vision stages' replicas: the soft tokens of the whole tower.
      const spreadSoft = await p.engine.encodeImage(g.pixelValues);
      const sw = worst(spreadSoft.data, soft.data);
      expect(sw.diff, `${label}: soft tokens, worst at ${sw.at}`).toBeLessThanOrEqual(1e-5);
      for (const s of stagesOf(p.manifest, "vision")) {
        const calls = [p.stages.get(s.name)!, ...p.replicas.get(s.name)!].map((t) => [t.calls.visionAttend ?? 0, t.calls.vision ?? 0]);
        expect(calls, `${label}: ${s.name} and its replicas each attended (${s.to - s.from} layers), none ran the whole image`).toEqual(Array(replicas).fill([replicas > 1 ? s.to - s.from : 0, replicas > 1 ? 0 : 1]));
      }
      const opts2 = { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: g.greedyIds.length, eos: [], mask: vocabMask(p.manifest), tokenizer: null };
      expect((await run(p.engine, spreadSoft, g.inputIds, opts2)).ids, `${label}: greedy ids`).toEqual(g.greedyIds);
    }
    ref.state.release?.();
  }, 240_000);
});

describe("a replica's blocks between calls", () => {
  it("an attend retried after its answer was lost answers the same, without running the layer twice; a lost block is a refusal", async () => {
    const g = loadGolden("paligemma2-tiny");
    const dir = join(work, "retry");
    await convert(g.dir, dir, { dtype: "fp32" });
    const p = await pipelineAt(dir);
    const s = p.stages.get(stagesOf(p.manifest, "decoder")[0].name)!.inner;
    const { hidden: h, kvHeads, headDim } = p.manifest.config.text;
    const rows = new Float32Array(4 * h).map((_, i) => Math.sin(i * 0.1));
    const block = { session: "r", run: "one", position: 0, total: 4, offset: 0, count: 4 };
    const k = await s.prefillKeys({ ...block, rows });
    if (!k.ok || k.kind !== "keys") throw new Error("expected keys");
    expect(k.keys.length).toBe(4 * kvHeads * headDim);
    const attend = { ...block, layer: k.layer, keys: k.keys, values: k.values };
    const a = await s.prefillAttend(attend);
    const again = await s.prefillAttend(attend);
    expect(again).toEqual(a);
    expect(a.ok && a.kind).toBe("keys");
    expect(await s.prefillAttend({ ...attend, run: "other" })).toEqual({ ok: false, reason: "missing", length: 0 });
    await expect(s.prefillKeys({ ...block, offset: 2, count: 3, rows })).rejects.toThrow("a block is rows [offset, offset + count)");
  });
});

describe("a replica restarted in the middle of a spread prefill", () => {
  it("refuses the next layer; the coordinator replays and the answer is the golden's", async () => {
    const g = loadGolden("paligemma-shapes");
    const dir = join(work, "restart");
    await convert(g.dir, dir, { dtype: "fp32", mlpParts: 2 });
    const p = await pipelineAt(dir, {}, { replicas: 2 });
    const victim = p.replicas.get(stagesOf(p.manifest, "decoder")[0].name)![0];
    victim.onCall = (m) => {
      if (m === "prefillAttend") {
        victim.onCall = null;
        victim.restart(); // its blocks and weights gone before it answers
      }
    };
    const soft = await p.engine.encodeImage(g.pixelValues);
    const opts = { sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, maxTokens: g.greedyIds.length, eos: [], mask: vocabMask(p.manifest), tokenizer: null };
    expect((await run(p.engine, soft, g.inputIds, opts)).ids).toEqual(g.greedyIds);
    expect(victim.onCall).toBeNull();
    expect(p.engine.replays).toBe(1);
  }, 120_000);
});
