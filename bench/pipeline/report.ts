/** The pipeline bench's table and its JSON contract (bench/pipeline/run.ts). */
import type { PipelineReport } from "./run.ts";
import { PIPELINE_HOPS } from "./run.ts";
import { DECODER_SUBREQUESTS } from "../../shared/pipeline/budget.ts";

/**
 * The contract: `{"pipeline": [{"dtype", "stages", "hop_ms", "sessions", "replicas", "tokens_per_s_per_session",
 * "aggregate_tokens_per_s", "ttft_s"}, …], "hop_ms_measured_local": <float>}` (the injected hops only; per dtype
 * the sequential plan's points, then the parallel plan's: `stages` tells them apart).
 */
export function pipelineJson(r: PipelineReport): unknown {
  const injected = new Set<number>(PIPELINE_HOPS);
  return {
    pipeline: r.plans.flatMap((p) => p.points.filter((x) => injected.has(x.hop_ms)).map((x) => ({ dtype: p.dtype, stages: p.stages, ...x }))),
    hop_ms_measured_local: r.hop_ms_measured_local,
  };
}

/** A table per plan: the timed stages, then the modelled points. */
export function formatPipelineReport(r: PipelineReport): string {
  const lines = [
    "PaliGemma-3B shapes (synthetic weights) as a pipeline of stage workers planned at 100 MB per stage; per-stage times measured in workerd,",
    `the rest modelled (bench/pipeline/model.ts; concurrent sessions simulated, simulate.ts: all requested at once, each stage serving them as KernelStage does). Local hop (Workers RPC over a service binding, one row each way): ${r.hop_ms_measured_local} ms.`,
    "",
  ];
  for (const p of r.plans) {
    const cut = p.plan === "parallel" ? `each cut layer in ${p.parts_per_layer} parallel parts holding its attention` : `each cut layer in ${p.parts_per_layer} sequential parts`;
    lines.push(`${p.dtype}, ${p.plan} plan (${cut}, ${p.head_shards} head shards): ${p.stages} stages, ${p.hops_per_token} sequential hops per token, ${p.calls_per_token} stage calls per token (${p.calls_512_tokens} for 512 tokens${p.calls_512_tokens > DECODER_SUBREQUESTS ? `, over the decoder's ${DECODER_SUBREQUESTS} subrequests` : ""}), coordinator ${p.coordinator_ms} ms per token`, "");
    lines.push("| timed stage | weights MB | load ms | prefill ms | one replica's share at r = 2 / 4 / 8, ms | step ms (1 / 4 / 16 sessions) |", "|---|---:|---:|---:|---|---|");
    for (const t of p.timed) lines.push(`| ${t.name} | ${(t.weightBytes / 1e6).toFixed(1)} | ${Math.round(t.loadMs)} | ${t.prefillMs.toFixed(1)} | ${[2, 4, 8].map((r) => t.spreadMs?.[r]?.toFixed(1) ?? "–").join(" / ")} | ${[1, 4, 16].map((b) => t.stepMs[b]?.toFixed(2) ?? "–").join(" / ")} |`);
    lines.push("", "| hop ms | sessions | tokens/s per session | aggregate tokens/s | aggregate in lockstep | time to first token s |", "|---:|---:|---:|---:|---:|---:|");
    for (const x of p.points.filter((y) => y.replicas === 1)) {
      const l = p.lockstep.find((y) => y.hop_ms === x.hop_ms && y.sessions === x.sessions);
      lines.push(`| ${x.hop_ms} | ${x.sessions} | ${x.tokens_per_s_per_session} | ${x.aggregate_tokens_per_s} | ${l?.aggregate_tokens_per_s ?? "–"} | ${x.ttft_s} |`);
    }
    lines.push("", `First-token budget (one prompt of the bench's rows, idle pipeline; prefill and vision spread over r replicas of every decoder and vision stage):`, "");
    lines.push("| hop ms | replicas | vision s | prefill s | head + sampling s | hops | hops s | time to first token s |", "|---:|---:|---:|---:|---:|---:|---:|---:|");
    const s = (ms: number) => (ms / 1000).toFixed(2);
    for (const b of p.budgets) lines.push(`| ${b.hop_ms} | ${b.replicas} | ${s(b.vision_ms)} | ${s(b.prefill_ms)} | ${s(b.head_ms)} | ${b.hops} | ${s(b.hops_ms)} | ${b.ttft_s} |`);
    lines.push("");
  }
  return lines.join("\n");
}
