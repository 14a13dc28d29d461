/**
 * Batching across sessions: a decode step of several sequences in one pass over the weights (KernelModel
 * stepRows, shared/kernel/forward-batch.ts) gives bit for bit each sequence's own step, for every weight format
 * and compute mode; and a pipeline's stages coalesce the steps of sessions decoding concurrently into such passes,
 * every session keeping exactly the tokens it gets alone.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { folderStore } from "../../cli/node-runtime.ts";
import { convert } from "../../converter/convert.ts";
import { openFrom, readManifest } from "../../shared/engine/engine.ts";
import type { GenerateOptions } from "../../shared/generation/generate.ts";
import { KernelModel } from "../../shared/kernel/model.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf } from "../../shared/model/manifest.ts";
import { vocabMask } from "../../shared/model/vocab.ts";
import { loadGolden, SHAPES_MODEL } from "../helpers/golden.ts";
import { pipelineAt, run, wholeAt } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "pg-pipeline-batch-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => initKernelForNode());

function rowsOf(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed + i * 0.37);
  return out;
}

describe("a batched decode step", () => {
  for (const [dtype, accuracyLevel] of [["fp32", 0], ["int8", 0], ["int8", 4], ["int4", 4]] as const) {
    it(`${dtype}, accuracy level ${accuracyLevel}: 3 sequences in one pass equal each stepped alone, bit for bit`, async () => {
      const dir = join(work, `${dtype}-${accuracyLevel}`);
      await convert(SHAPES_MODEL, dir, { dtype, accuracyLevel, mlpParts: 2 });
      const manifest = await readManifest(folderStore(dir));
      const h = manifest.config.text.hidden;
      for (const stage of stagesOf(manifest, "decoder").slice(0, 2)) {
        const model = await KernelModel.load(manifest, [stage], openFrom(folderStore(dir), manifest));
        // Two families of the same sequences: one stepped alone, one in batches; different lengths per sequence.
        const fam = () => [5, 9, 1].map((n, s) => {
          const seq = model.newSequence();
          model.stageRows(seq, rowsOf(n * h, s), n);
          return seq;
        });
        const alone = fam();
        const batched = fam();
        for (let step = 0; step < 3; step++) {
          const rows = alone.map((_, s) => rowsOf(h, 10 * step + s));
          const want = alone.map((seq, s) => model.stepRow(seq, rows[s]));
          const got = model.stepRows(batched, rows);
          got.forEach((g, s) => {
            expect(Array.from(g.hidden), `${stage.name} step ${step} seq ${s}`).toEqual(Array.from(want[s].hidden));
            expect(g.partial && Array.from(g.partial)).toEqual(want[s].partial && Array.from(want[s].partial));
          });
        }
        expect(batched.map((s) => s.length)).toEqual([8, 12, 4]);
      }
      // A head stage: several final rows scored in one pass equal each scored alone.
      const headStage = stagesOf(manifest, "head")[0];
      const head = await KernelModel.load(manifest, [headStage], openFrom(folderStore(dir), manifest));
      const vocab = manifest.config.text.vocab;
      const rows = [0, 1, 2].map((s) => rowsOf(h, 40 + s));
      const outs = rows.map(() => new Float32Array(vocab));
      head.logitsRows(rows, outs);
      rows.forEach((row, s) => {
        const want = new Float32Array(vocab);
        head.logitsOf(row, want);
        expect(Array.from(outs[s]), `head row ${s}`).toEqual(Array.from(want));
      });
    });
  }
});

describe("stages coalescing concurrent sessions", () => {
  const g = loadGolden("paligemma-shapes");
  /**
   * Three generations at once through an int8 (accuracy level 4) pipeline whose stages take at most `stepBatch`
   * rows a pass (undefined: the stage's default); each session's tokens as alone. Returns passes and rows per
   * decoder stage.
   */
  async function together(dir: string, stepBatch: number | undefined) {
    await convert(SHAPES_MODEL, join(work, dir), { dtype: "int8", accuracyLevel: 4, mlpParts: 2, headRowsPerStage: 800 });
    const p = await pipelineAt(join(work, dir), {}, stepBatch === undefined ? {} : { stepBatch });
    const soft = await (await wholeAt(join(work, dir))).encodeImage(g.pixelValues);
    const base: GenerateOptions = { sampling: { temperature: 0.9, topK: 8, topP: 0.95 }, seed: 0, maxTokens: 10, eos: [], mask: vocabMask(p.manifest), tokenizer: null, topLogprobs: 2 };
    const opts = [1, 2, 3].map((seed) => ({ ...base, seed }));
    const alone: Awaited<ReturnType<typeof run>>["tokens"][] = [];
    for (const o of opts) alone.push((await run(p.engine, soft, g.inputIds, o)).tokens);
    const decoder = [...p.stages.values()].filter((s) => s.inner.stage.kind === "decoder");
    const before = decoder.map((s) => ({ ...s.inner.stepStats }));
    const runs = await Promise.all(opts.map((o) => run(p.engine, soft, g.inputIds, o)));
    runs.forEach((r, i) => expect(r.tokens, `seed ${i + 1}`).toEqual(alone[i]));
    return decoder.map((s, i) => ({ name: s.inner.stage.name, passes: s.inner.stepStats.passes - before[i].passes, rows: s.inner.stepStats.rows - before[i].rows }));
  }

  it("steps of up to 16 rows a pass: batched passes at every stage, each session's tokens as alone", async () => {
    for (const s of await together("split16", 16)) {
      expect(s.rows, s.name).toBe(3 * 9); // 9 steps each
      expect(s.passes, s.name).toBeLessThan(s.rows); // rows shared passes
    }
  });

  it("int8 activations on relaxed SIMD (batching shares no work): one row a pass by default, first come first served", async () => {
    const dir = join(work, "split16");
    const manifest = await readManifest(folderStore(dir));
    const model = await KernelModel.load(manifest, [stagesOf(manifest, "decoder")[0]], openFrom(folderStore(dir), manifest));
    const relaxed = model.memory().flavor === "relaxed";
    expect(model.batchedStepsShareWork).toBe(!relaxed);
    for (const s of await together("split1", undefined)) {
      expect(s.rows, s.name).toBe(3 * 9);
      if (relaxed) expect(s.passes, s.name).toBe(s.rows);
      else expect(s.passes, s.name).toBeLessThan(s.rows);
    }
  });
});
