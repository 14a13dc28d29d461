/**
 * The eval's human-readable table and its thresholds (`--min-caption 0.75`, `--min-recall 50%`, …).
 */
import type { DetectionMetrics, EvalMetrics } from "../../shared/tasks/metrics.ts";
import type { EvalReport } from "./run.ts";

/** Threshold names → where their value is in the report. */
export const THRESHOLDS = {
  caption: (r: EvalReport) => r.metrics.caption?.exact_match,
  count: (r: EvalReport) => r.metrics.count?.exact_match,
  color: (r: EvalReport) => r.metrics.color?.exact_match,
  recall: (r: EvalReport) => detection(r.metrics)?.recall_iou50,
  "mean-iou": (r: EvalReport) => detection(r.metrics)?.mean_iou,
  precision: (r: EvalReport) => detection(r.metrics)?.precision_iou50,
  agreement: (r: EvalReport) => (r.agreement.total > 0 ? r.agreement.same / r.agreement.total : undefined),
} as const;

/** One of {@link THRESHOLDS}. */
export type ThresholdName = keyof typeof THRESHOLDS;

/** The detection metrics of a run, if it had detect cases. */
export function detection(metrics: EvalMetrics): DetectionMetrics | undefined {
  const m = metrics.detect;
  return m && "recall_iou50" in m ? m : undefined;
}

/** Parses a threshold: a fraction ("0.5") or a percentage ("50%"). */
export function parseThreshold(text: string): number {
  const percent = text.trim().endsWith("%");
  const value = Number(percent ? text.trim().slice(0, -1) : text);
  const fraction = percent ? value / 100 : value;
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) throw new Error(`not a threshold between 0 and 1 (or 0% and 100%): "${text}"`);
  return fraction;
}

/** The thresholds a report misses ("recall 0.42 < 0.5"); a metric the run lacks counts as missed. */
export function missedThresholds(report: EvalReport, mins: Partial<Record<ThresholdName, number>>): string[] {
  const missed: string[] = [];
  for (const [name, min] of Object.entries(mins) as [ThresholdName, number][]) {
    const value = THRESHOLDS[name](report);
    if (value === undefined) missed.push(`${name}: not measured`);
    else if (value < min) missed.push(`${name} ${value.toFixed(4)} < ${min}`);
  }
  return missed;
}

const pct = (v: number | undefined): string => (v === undefined ? "-" : `${(v * 100).toFixed(1)}%`);

/** The table printed for people. */
export function formatReport(report: EvalReport): string {
  const lines: string[] = [];
  const seconds = (report.wall_ms / 1000).toFixed(1);
  lines.push(`eval: ${report.cases} cases on ${report.images} images against ${report.base_url} (model ${report.model ?? "?"}) in ${seconds} s`);
  lines.push("");
  lines.push(`${"kind".padEnd(10)}${"cases".padStart(6)}${"exact".padStart(9)}${"reference".padStart(11)}`);
  for (const [kind, m] of Object.entries(report.metrics)) {
    lines.push(`${kind.padEnd(10)}${String(m.cases).padStart(6)}${pct(m.exact_match).padStart(9)}${pct(report.reference[kind]?.exact_match).padStart(11)}`);
  }
  const d = detection(report.metrics);
  if (d) {
    const ref = report.reference.detect ?? {};
    lines.push("");
    lines.push(
      `detection (${d.gt_objects} objects): recall@IoU0.5 ${pct(d.recall_iou50)} (reference ${pct(ref.recall_iou50)}), ` +
        `mean IoU ${d.mean_iou.toFixed(3)} (reference ${ref.mean_iou?.toFixed(3) ?? "-"}), ` +
        `precision ${pct(d.precision_iou50)} (reference ${pct(ref.precision_iou50)}), ` +
        `absent class → empty ${d.empty_cases_correct}/${d.empty_cases}`,
    );
    const sd = report.server_detections;
    if (sd.used < sd.total) lines.push(`  note: ${sd.total - sd.used} of ${sd.total} detect answers had no "detections" field; their text was parsed here`);
  }
  if (report.agreement.total > 0) lines.push(`same answer as the reference model: ${report.agreement.same}/${report.agreement.total}`);
  for (const x of report.disagreements.slice(0, 10)) lines.push(`  ${x.image} "${x.prefix}": got "${x.answer}", reference "${x.reference}"`);
  if (report.disagreements.length > 10) lines.push(`  … ${report.disagreements.length - 10} more`);
  const t = report.timings;
  const reasons = Object.entries(report.finish_reasons).map(([k, v]) => `${k} ${v}`).join(", ");
  lines.push(`finish: ${reasons || "-"}; mean time to first token ${t.time_to_first_token_ms?.toFixed(1) ?? "-"} ms, ${t.tokens_per_second?.toFixed(1) ?? "-"} tokens/s`);
  if (report.rate_limit_retries > 0) lines.push(`rate limited: ${report.rate_limit_retries} request(s) waited for retry-after and were sent again`);
  if (report.errors.length > 0) {
    lines.push(`ERRORS: ${report.errors.length} request(s) failed`);
    for (const e of report.errors.slice(0, 5)) lines.push(`  ${e.image}${e.prefix ? ` "${e.prefix}"` : ""}: ${e.message}`);
  }
  return lines.join("\n");
}
