/**
 * The reference the workerd LoRA test compares with, made in Node when the workers' vitest config loads: the
 * golden adapter's merged checkpoint (../shared/golden-lora/shapes-lora-a/merged) converted on its own (fp32)
 * and run on the shapes golden's input (kernel engine): full-sequence logits, 8 greedy ids and their step logits.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../cli/node-runtime.ts";
import { convert } from "../../converter/convert.ts";
import type { DecoderState } from "../../shared/engine/types.ts";

/** base64 of the merged model's logits f32[L, vocab], step logits f32[8, vocab], and its greedy ids as JSON. */
export async function loraReference(shared: string): Promise<{ logits: string; steps: string; greedy: string }> {
  return mergedReference(join(shared, "golden-lora/shapes-lora-a/merged"), shared);
}

/** The same for any merged checkpoint of the shapes model (`hfDir`, converted here at fp32). */
export async function mergedReference(hfDir: string, shared: string): Promise<{ logits: string; steps: string; greedy: string }> {
  const work = mkdtempSync(join(tmpdir(), "pg-lora-ref-"));
  try {
    await convert(hfDir, work, { dtype: "fp32", id: "paligemma-shapes" });
    const engine = await loadModel(work, { vision: "kernel", prefill: "kernel", decode: "kernel" });
    const bytes = (name: string) => readFileSync(join(shared, "golden/paligemma-shapes", name));
    const pv = bytes("pixel_values.bin");
    const idsB = bytes("input_ids.bin");
    const ids = Array.from(new BigInt64Array(idsB.buffer.slice(idsB.byteOffset, idsB.byteOffset + idsB.byteLength)), Number);
    const soft = await engine.encodeImage(new Float32Array(pv.buffer.slice(pv.byteOffset, pv.byteOffset + pv.byteLength)));
    const full = await engine.prefill(soft, ids, { allLogits: true });
    full.state.release?.();
    let { state, logits } = await engine.prefill(soft, ids);
    const first = state;
    const greedy: number[] = [];
    const steps: Float32Array[] = [];
    for (let k = 0; k < 8; k++) {
      steps.push(logits);
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      greedy.push(best);
      ({ state, logits } = await engine.step(state as DecoderState, best));
    }
    first.release?.();
    const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
    const all = new Float32Array(steps.length * steps[0].length);
    steps.forEach((s, k) => all.set(s, k * s.length));
    return { logits: b64(full.logits), steps: b64(all), greedy: JSON.stringify(greedy) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
