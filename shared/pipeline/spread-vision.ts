/**
 * The coordinator's spread vision tower (the stage side: shared/pipeline/spread-stage.ts VisionSessions): per
 * vision stage, the image's N rows cut into one block per replica; the first stage's replicas each embed their
 * block's patches from the pixels; then per layer every block's keys and values f32[m, D] are gathered into the
 * layer's f32[N, D] (N = 256, D = 1152 for PaliGemma-3B-224: 1.2 MB each), handed to every replica, and each
 * attends its rows over all of them and runs their MLP. The last stage returns its blocks' soft tokens.
 */
import type { VisionReply } from "../api/spread-rpc.ts";
import type { ModelConfig } from "../model/config.ts";
import { blocksOf } from "./spread.ts";
import { CacheLost, type StageClient } from "./stage-client.ts";

/**
 * Pixels f32[1, 3, S, S] through the vision stages (each a list of replicas, its own client first) → soft tokens
 * f32[N, P]. A stage that lost a block between calls (it restarted) makes the image run once more.
 */
export async function spreadVision(stages: readonly (readonly StageClient[])[], pixels: Float32Array, config: ModelConfig): Promise<Float32Array> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await throughStages(stages, pixels, config);
    } catch (err) {
      if (!(err instanceof CacheLost) || attempt > 0) throw err;
      console.warn(`${err.message} (an image's block): running the image again`);
    }
  }
}

async function throughStages(stages: readonly (readonly StageClient[])[], pixels: Float32Array, config: ModelConfig): Promise<Float32Array> {
  const { imageTokens: n, vision: v } = config;
  const d = v.hidden;
  let x = pixels;
  for (const [i, reps] of stages.entries()) {
    const run = crypto.randomUUID(); // unique across coordinators: stages serve every vision worker's isolates
    const blocks = blocksOf(n, reps.length, n);
    const ok = (r: VisionReply, s: StageClient) => {
      if (r.kind === "lost") throw new CacheLost(s.stage.name);
      return r;
    };
    const input = (b: (typeof blocks)[number]) => (i === 0 ? x : x.slice(b.offset * d, (b.offset + b.count) * d));
    let replies = await Promise.all(blocks.map(async (b) => ok(await reps[b.replica].call("visionKeys", { run, offset: b.offset, count: b.count, input: input(b) }), reps[b.replica])));
    for (;;) {
      const first = replies[0];
      if (first.kind !== "keys") break;
      const keys = new Float32Array(n * d);
      const values = new Float32Array(n * d);
      replies.forEach((r, j) => {
        if (r.kind !== "keys" || r.layer !== first.layer) throw new Error(`replicas of ${reps[0].stage.name} disagree on the layer they are at`);
        keys.set(r.keys, blocks[j].offset * d);
        values.set(r.values, blocks[j].offset * d);
      });
      replies = await Promise.all(blocks.map(async (b) => ok(await reps[b.replica].call("visionAttend", { run, offset: b.offset, count: b.count, layer: first.layer, keys, values }), reps[b.replica])));
    }
    const width = replies[0].kind === "rows" ? replies[0].rows.length / blocks[0].count : d;
    const out = new Float32Array(n * width);
    replies.forEach((r, j) => {
      if (r.kind !== "rows") throw new Error(`a replica of ${reps[0].stage.name} answered keys where rows were due`);
      out.set(r.rows, blocks[j].offset * width);
    });
    x = out;
  }
  return x;
}
