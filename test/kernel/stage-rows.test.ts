/**
 * One engine per stage, as a pipeline would run them: the shapes model converted with every decoder layer cut
 * into 2 MLP parts, each stage loaded alone in its own kernel instance. Rows go through the stages in order, the
 * parts' sums combined by the caller (shared/engine/parts.ts); prefill and decode steps give the logits of the
 * whole model in one engine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convert } from "../../converter/convert.ts";
import { folderStore, loadModel } from "../../cli/node-runtime.ts";
import { openFrom, readManifest } from "../../shared/engine/engine.ts";
import { combineParts } from "../../shared/engine/parts.ts";
import { promptRows } from "../../shared/engine/prompt-rows.ts";
import { KernelModel } from "../../shared/kernel/model.ts";
import { initKernelForNode } from "../../shared/kernel/node.ts";
import { stagesOf, type Manifest } from "../../shared/model/manifest.ts";
import { loadGolden, maxAbs, maxAbsDiff, SHAPES_MODEL } from "../helpers/golden.ts";

const work = mkdtempSync(join(tmpdir(), "pg-stage-rows-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let manifest: Manifest;
let dir: string;

beforeAll(async () => {
  await initKernelForNode();
  dir = join(work, "parts");
  await convert(SHAPES_MODEL, dir, { dtype: "int8", mlpParts: 2 });
  manifest = await readManifest(folderStore(dir));
});

describe("stage engines in a row", () => {
  it("each stage alone in its own kernel instance: prefill and steps equal the whole model", async () => {
    const open = openFrom(folderStore(dir), manifest);
    const t = manifest.config.text;
    const decoder = await Promise.all(stagesOf(manifest, "decoder").map(async (s) => ({ stage: s, model: await KernelModel.load(manifest, [s], open) })));
    const head = await KernelModel.load(manifest, stagesOf(manifest, "head"), open);
    expect(decoder.length).toBe(2 * t.layers);
    const seqs = decoder.map((d) => d.model.newSequence());

    /** Rows through every decoder stage: parts of a layer see the same input, their sums are combined. */
    const through = (rows: Float32Array, n: number, step: boolean): Float32Array => {
      let x = rows;
      for (let l = 0; l < t.layers; l++) {
        const parts = decoder.map((d, i) => ({ ...d, seq: seqs[i] })).filter((d) => d.stage.from === l);
        const [first, ...rest] = parts;
        const a = step ? first.model.stepRow(first.seq, x) : first.model.stageRows(first.seq, x, n);
        const partials = [a.partial!, ...rest.map((p) => (step ? p.model.stepRow(p.seq, a.hidden) : p.model.stageRows(p.seq, a.hidden, n)).partial!)];
        x = combineParts(a.hidden, partials, first.model.postFfNorm(l), t.rmsNormEps);
      }
      return x;
    };

    const g = loadGolden("paligemma-shapes");
    const whole = await loadModel(dir, { vision: "kernel", prefill: "kernel", decode: "kernel" });
    const soft = await whole.encodeImage(g.pixelValues);
    const ref = await whole.prefill(soft, g.inputIds);
    const rows = promptRows(manifest.config, soft, g.inputIds, (id, out) => head.embed(id, out));
    const out = through(rows, g.inputIds.length, false);
    const logits = new Float32Array(t.vocab);
    head.logitsOf(out.subarray((g.inputIds.length - 1) * t.hidden), logits);
    const tol = (l: Float32Array) => 1e-4 * Math.max(1, maxAbs(l));
    expect(maxAbsDiff(logits, ref.logits).max).toBeLessThanOrEqual(tol(ref.logits));

    let state = ref.state;
    for (const id of g.greedyIds.slice(0, 4)) {
      const r = await whole.step(state, id);
      state = r.state;
      const row = new Float32Array(t.hidden);
      head.embed(id, row);
      const got = new Float32Array(t.vocab);
      head.logitsOf(through(row, 1, true), got);
      expect(maxAbsDiff(got, r.logits).max, `step after ${id}`).toBeLessThanOrEqual(tol(r.logits));
    }
    // Only attention stages hold KV caches.
    expect(seqs.map((s) => s.layers.length)).toEqual(decoder.map((d) => (d.stage.attention === false ? 0 : 1)));
  });
});
