/**
 * Accuracy metrics for task answers, as the shapes model's evaluation defines them (docs/model-notes.md, "Detection and
 * segmentation answers"):
 *
 * - caption, count, colour (any non-box kind): exact match of the trimmed answer with the expected text;
 * - detection: a ground-truth object counts as found when a predicted box with the same label has IoU >= 0.5,
 *   with greedy one-to-one matching (highest IoU first); mean IoU averages each ground-truth object's best
 *   same-label IoU (0 when no prediction has its label); precision is matched predictions / predictions.
 *
 * Pure functions: scripts/eval.ts and the tests use them on answers from the HTTP API.
 */
import type { Box } from "./loc-answer.ts";

/** IoU at or above which a predicted box finds a ground-truth object. */
export const IOU_THRESHOLD = 0.5;

/** A box with its label. */
export interface LabeledBox extends Box {
  readonly label: string;
}

/** Area of a box (0 when empty or inverted). */
function area(b: Box): number {
  return Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
}

/** Intersection over union of two boxes (x2/y2 exclusive edges; 0 when the union is empty). */
export function iou(a: Box, b: Box): number {
  const inter = area({ x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1), x2: Math.min(a.x2, b.x2), y2: Math.min(a.y2, b.y2) });
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** One ground-truth ↔ prediction pair of a matching. */
export interface Match {
  readonly gt: number;
  readonly pred: number;
  readonly iou: number;
}

/**
 * Greedy one-to-one matching of same-label boxes: all pairs with IoU >= `threshold`, highest IoU first
 * (ties: lower ground-truth index, then lower prediction index), each box used at most once.
 */
export function matchGreedy(gt: readonly LabeledBox[], pred: readonly LabeledBox[], threshold = IOU_THRESHOLD): Match[] {
  const pairs: Match[] = [];
  gt.forEach((g, i) =>
    pred.forEach((p, j) => {
      if (g.label !== p.label) return;
      const v = iou(g, p);
      if (v >= threshold) pairs.push({ gt: i, pred: j, iou: v });
    }),
  );
  pairs.sort((a, b) => b.iou - a.iou || a.gt - b.gt || a.pred - b.pred);
  const usedGt = new Set<number>();
  const usedPred = new Set<number>();
  const matches: Match[] = [];
  for (const pair of pairs) {
    if (usedGt.has(pair.gt) || usedPred.has(pair.pred)) continue;
    usedGt.add(pair.gt);
    usedPred.add(pair.pred);
    matches.push(pair);
  }
  return matches;
}

/** How one detection answer scores against its ground truth. */
export interface DetectionScore {
  readonly gtObjects: number;
  readonly found: number;
  readonly predicted: number;
  /** Each ground-truth object's best same-label IoU (0 if none). */
  readonly bestIous: readonly number[];
}

/** Scores the predicted boxes of one answer against the ground-truth objects of the asked classes. */
export function scoreDetection(gt: readonly LabeledBox[], pred: readonly LabeledBox[]): DetectionScore {
  const bestIous = gt.map((g) => Math.max(0, ...pred.filter((p) => p.label === g.label).map((p) => iou(g, p))));
  return { gtObjects: gt.length, found: matchGreedy(gt, pred).length, predicted: pred.length, bestIous };
}

/** One scored case: its kind, whether the whole answer was exactly right, and for detection its box score. */
export interface CaseOutcome {
  readonly kind: string;
  readonly exact: boolean;
  readonly detection?: DetectionScore;
}

/** Exact-match metrics of one kind. */
export interface ExactMetrics {
  readonly cases: number;
  readonly exact_match: number;
}

/** Detection metrics (named as in the shapes eval's cases.json `metrics.detect`). */
export interface DetectionMetrics extends ExactMetrics {
  readonly gt_objects: number;
  readonly recall_iou50: number;
  readonly mean_iou: number;
  readonly precision_iou50: number;
  /** Cases with no ground-truth object, and how many of them got the expected empty answer. */
  readonly empty_cases: number;
  readonly empty_cases_correct: number;
}

/** All metrics of a run, by case kind; detection kinds carry {@link DetectionMetrics}. */
export type EvalMetrics = Record<string, ExactMetrics | DetectionMetrics>;

const ratio = (n: number, d: number): number => (d > 0 ? n / d : 0);

/** Aggregates case outcomes into metrics per kind (kinds in first-seen order). */
export function summarize(outcomes: readonly CaseOutcome[]): EvalMetrics {
  const byKind = new Map<string, CaseOutcome[]>();
  for (const o of outcomes) byKind.set(o.kind, [...(byKind.get(o.kind) ?? []), o]);
  const metrics: EvalMetrics = {};
  for (const [kind, list] of byKind) {
    const exact = { cases: list.length, exact_match: ratio(list.filter((o) => o.exact).length, list.length) };
    const scores = list.flatMap((o) => (o.detection ? [o.detection] : []));
    if (scores.length === 0) {
      metrics[kind] = exact;
      continue;
    }
    const sum = (f: (s: DetectionScore) => number): number => scores.reduce((acc, s) => acc + f(s), 0);
    const gtObjects = sum((s) => s.gtObjects);
    const empty = list.filter((o) => o.detection?.gtObjects === 0);
    metrics[kind] = {
      ...exact,
      gt_objects: gtObjects,
      recall_iou50: ratio(sum((s) => s.found), gtObjects),
      mean_iou: ratio(sum((s) => s.bestIous.reduce((a, b) => a + b, 0)), gtObjects),
      precision_iou50: ratio(sum((s) => s.found), sum((s) => s.predicted)),
      empty_cases: empty.length,
      empty_cases_correct: empty.filter((o) => o.exact).length,
    };
  }
  return metrics;
}
