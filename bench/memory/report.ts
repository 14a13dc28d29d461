/** The memory bench's table and its JSON contract (bench/memory/run.ts). */
import type { MemoryReport } from "./run.ts";

const mb = (b: number) => (b / 1e6).toFixed(1);

/** The contract: `{"budget_mb", "plans": [{"dtype", "stages", "weight_bytes", "measured": [{name, kind, from, to, weight_bytes, kernel_bytes, js_heap_bytes, peak_rss_delta_bytes}]}]}`. */
export function memoryJson(r: MemoryReport): unknown {
  return {
    budget_mb: r.budget_mb,
    plans: r.plans.map((p) => ({
      dtype: p.dtype,
      stages: p.stages,
      weight_bytes: p.weight_bytes,
      measured: p.measured.map((m) => ({ name: m.name, kind: m.kind, from: m.from, to: m.to, weight_bytes: m.weight_bytes, kernel_bytes: m.kernel_bytes, js_heap_bytes: m.js_heap_bytes, peak_rss_delta_bytes: m.peak_rss_delta_bytes })),
    })),
  };
}

/** A table per plan: measured bytes next to the planner's estimate, MB = 10⁶ bytes. */
export function formatMemoryReport(r: MemoryReport): string {
  const lines = [
    `Stage memory, PaliGemma-3B shapes (synthetic weights), planned at ${r.budget_mb} MB per stage; each stage alone in its own workerd process.`,
    `A worker with the kernel module and no model: resident ${mb(r.baseline.rss_bytes)} MB (peak ${mb(r.baseline.peak_rss_bytes)}), JS heap ${mb(r.baseline.js_heap_bytes)} MB.`,
    "Each stage's peak RSS is its process's VmHWM minus that same process's resident set just before it loaded the stage.",
    "",
  ];
  for (const p of r.plans) {
    lines.push(`${p.dtype}: ${p.stages} stages, ${mb(p.weight_bytes)} MB of weights`, "");
    lines.push("| stage | kind | range | weights MB | kernel memory MB | JS heap MB | peak RSS − before MB | estimate MB | fits |", "|---|---|---|---:|---:|---:|---:|---:|---|");
    for (const m of p.measured) {
      const range = m.mlp ? `layer ${m.from}, MLP [${m.mlp.from}, ${m.mlp.to})${m.attention === false ? "" : " + attention"}` : `[${m.from}, ${m.to})`;
      const fits = m.peak_rss_delta_bytes <= r.budget_mb * 1e6 ? "yes" : "NO";
      lines.push(`| ${m.name} | ${m.kind} | ${range} | ${mb(m.weight_bytes)} | ${mb(m.kernel_bytes)} | ${mb(m.js_heap_bytes)} | ${mb(m.peak_rss_delta_bytes)} | ${mb(m.estimate.residentBytes)} | ${fits} |`);
    }
    lines.push("");
  }
  return lines.join("\n");
}
