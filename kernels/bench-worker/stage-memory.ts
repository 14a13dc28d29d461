/**
 * POST /stage: one stage of a model, alone in this isolate, loaded the way a stage worker loads it (the weight
 * file streamed from a loopback file server into kernel memory, sha256 checked) and then worked as a stage works:
 * decoder stages prefill `rows` rows and decode `steps` tokens for each of `sessions` sessions, every session's
 * KV cache reserved for `context` positions and all kept alive to the end; vision stages run one image (or the
 * previous stage's rows); head stages score rows. The memory bench (bench/memory/) reads the process's peak RSS
 * around it; this reply gives the kernel instance's side.
 */
import { KernelModel } from "../../shared/kernel/model.ts";
import type { KernelModule } from "../../shared/kernel/module.ts";
import { parseManifest } from "../../shared/model/manifest.ts";

export interface StageMemoryRequest {
  readonly modelUrl: string;
  readonly stage: string;
  readonly sessions: number;
  readonly context: number;
  readonly rows: number;
  readonly steps: number;
}

export interface StageMemoryReply {
  readonly weightBytes: number;
  /** The kernel instance's linear memory at the end (it never shrinks: its peak). */
  readonly kernelBytes: number;
  /** Live kernel allocations at the end: weights, KV caches, scratch. */
  readonly liveBytes: number;
  readonly loadMs: number;
  readonly workMs: number;
}

/** Deterministic filler rows (the values do not change the memory a stage uses), into `out` or a fresh array. */
function rowsOf(n: number, seed: number, out = new Float32Array(n)): Float32Array {
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed + i * 0.37) * 0.5;
  return out;
}

export async function stageMemory(req: StageMemoryRequest, kernel: KernelModule): Promise<StageMemoryReply> {
  const manifest = parseManifest(await (await fetch(new URL("manifest.json", req.modelUrl))).json());
  const stage = manifest.stages.find((s) => s.name === req.stage);
  if (!stage) throw new Error(`no stage ${req.stage}`);
  const t0 = performance.now();
  const open = async (name: string) => {
    const res = await fetch(new URL(name, req.modelUrl));
    if (!res.ok || !res.body) throw new Error(`${name}: HTTP ${res.status}`);
    return res.body;
  };
  const model = await KernelModel.load(manifest, [stage], open, { kernel, maxPositions: req.context });
  const t1 = performance.now();
  const c = manifest.config;
  const h = c.text.hidden;
  if (stage.kind === "decoder") {
    // A call's input and output rows [P, H] are one array each, reused from call to call (what the estimate
    // counts); every session's cache is reserved at full context and kept to the end.
    const input = new Float32Array(req.rows * h);
    const part = stage.mlp !== undefined || stage.attention === false;
    const into = { hidden: new Float32Array(req.rows * h), ...(part ? { partial: new Float32Array(req.rows * h) } : {}) };
    const sequences = Array.from({ length: req.sessions }, () => model.newSequence());
    sequences.forEach((seq, s) => {
      seq.reserve(req.context);
      model.stageRows(seq, rowsOf(req.rows * h, s, input), req.rows, into);
      for (let k = 0; k < req.steps; k++) model.stepRow(seq, rowsOf(h, 100 * s + k, input.subarray(0, h)));
    });
  } else if (stage.kind === "vision") {
    const input = stage.from === 0 ? rowsOf(3 * c.vision.imageSize ** 2, 1) : rowsOf(c.imageTokens * c.vision.hidden, 1);
    model.visionStage(input);
  } else {
    const logits = new Float32Array(c.text.vocab);
    for (let k = 0; k < req.steps; k++) model.logitsOf(rowsOf(h, k), logits);
  }
  const m = model.memory();
  return { weightBytes: m.weightBytes, kernelBytes: m.memoryBytes, liveBytes: m.liveBytes, loadMs: t1 - t0, workMs: performance.now() - t1 };
}
