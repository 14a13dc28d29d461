/**
 * Scoring one eval case from the API's answer. Detection cases use the `detections` the server returned
 * (boxes in the original image's pixels); when the server returned none, the raw text is parsed here with the
 * same parser, and the report says so.
 */
import { parseLocAnswer, type Detection } from "../../shared/tasks/loc-answer.ts";
import { scoreDetection, type CaseOutcome, type LabeledBox } from "../../shared/tasks/metrics.ts";
import type { EvalCase, EvalImage } from "./cases.ts";

/** What the API answered for one case. */
export interface ApiAnswer {
  readonly text: string;
  /** The result's `detections`, when the server sent them. */
  readonly detections?: readonly Detection[];
}

/** The case's outcome, and whether its boxes came from the server (`false`: parsed from the text here). */
export function scoreCase(c: EvalCase, image: EvalImage, answer: ApiAnswer): CaseOutcome & { serverBoxes: boolean } {
  const exact = answer.text.trim() === c.expected.trim();
  if (c.kind !== "detect") return { kind: c.kind, exact, serverBoxes: false };
  const detections = answer.detections ?? parseLocAnswer(answer.text, image).detections;
  const pred: LabeledBox[] = detections.map((d) => ({ label: d.label, ...d.box }));
  return { kind: c.kind, exact, detection: scoreDetection(c.gt_boxes ?? [], pred), serverBoxes: answer.detections !== undefined };
}

/** A case whose request failed: a wrong answer with no boxes, so errors can never raise a score. */
export function failedOutcome(c: EvalCase): CaseOutcome {
  return { kind: c.kind, exact: false, ...(c.kind === "detect" ? { detection: scoreDetection(c.gt_boxes ?? [], []) } : {}) };
}
