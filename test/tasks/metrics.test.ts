import { describe, expect, it } from "vitest";
import { referenceMetrics } from "../../scripts/eval/cases.ts";
import { scoreCase } from "../../scripts/eval/score.ts";
import { iou, matchGreedy, scoreDetection, summarize, type LabeledBox } from "../../shared/tasks/index.ts";
import { loadShapesEval } from "./shapes-eval.ts";

const box = (label: string, x1: number, y1: number, x2: number, y2: number): LabeledBox => ({ label, x1, y1, x2, y2 });

describe("iou", () => {
  it("is 1 for equal boxes, 0 for disjoint or touching ones, and symmetric", () => {
    const a = box("a", 0, 0, 10, 10);
    expect(iou(a, a)).toBe(1);
    expect(iou(a, box("a", 10, 0, 20, 10))).toBe(0); // x2 is exclusive: touching edges do not overlap
    expect(iou(a, box("a", 50, 50, 60, 60))).toBe(0);
    expect(iou(a, box("a", 5, 0, 15, 10))).toBeCloseTo(50 / 150, 12);
    expect(iou(box("a", 5, 0, 15, 10), a)).toBe(iou(a, box("a", 5, 0, 15, 10)));
  });
  it("is 0 for empty boxes", () => {
    expect(iou(box("a", 0, 0, 0, 0), box("a", 0, 0, 0, 0))).toBe(0);
    expect(iou(box("a", 5, 5, 1, 1), box("a", 0, 0, 10, 10))).toBe(0);
  });
});

describe("matchGreedy", () => {
  it("matches one-to-one, best IoU first, and never across labels", () => {
    const gt = [box("c", 0, 0, 10, 10), box("c", 20, 0, 30, 10), box("s", 40, 0, 50, 10)];
    const pred = [box("c", 1, 0, 11, 10), box("c", 0, 0, 10, 10), box("c", 40, 0, 50, 10), box("s", 21, 0, 31, 10)];
    expect(matchGreedy(gt, pred)).toEqual([{ gt: 0, pred: 1, iou: 1 }]);
  });
  it("lets a second prediction take the second object after the best pair is used", () => {
    const gt = [box("c", 0, 0, 10, 10), box("c", 2, 0, 12, 10)];
    const pred = [box("c", 1, 0, 11, 10)];
    expect(matchGreedy(gt, pred).length).toBe(1);
    expect(matchGreedy(gt, [...pred, box("c", 2, 0, 12, 10)]).map((m) => [m.gt, m.pred])).toEqual([
      [1, 1],
      [0, 0],
    ]);
  });
  it("needs IoU >= 0.5", () => {
    expect(matchGreedy([box("c", 0, 0, 10, 10)], [box("c", 0, 0, 20, 10)]).length).toBe(1); // exactly 0.5
    expect(matchGreedy([box("c", 0, 0, 10, 10)], [box("c", 0, 0, 21, 10)]).length).toBe(0);
  });
});

describe("scoreDetection and summarize", () => {
  it("reports best same-label IoUs, found, predicted", () => {
    const s = scoreDetection([box("c", 0, 0, 10, 10), box("s", 20, 0, 30, 10)], [box("c", 0, 0, 10, 20), box("c", 20, 0, 30, 10)]);
    expect(s).toEqual({ gtObjects: 2, found: 1, predicted: 2, bestIous: [0.5, 0] });
  });
  it("aggregates exact match per kind, and recall / mean IoU / precision / empty cases for detection", () => {
    const metrics = summarize([
      { kind: "caption", exact: true },
      { kind: "caption", exact: false },
      { kind: "detect", exact: false, detection: { gtObjects: 2, found: 1, predicted: 3, bestIous: [0.9, 0.2] } },
      { kind: "detect", exact: true, detection: { gtObjects: 0, found: 0, predicted: 0, bestIous: [] } },
      { kind: "detect", exact: false, detection: { gtObjects: 0, found: 0, predicted: 1, bestIous: [] } },
    ]);
    expect(metrics.caption).toEqual({ cases: 2, exact_match: 0.5 });
    expect(metrics.detect).toEqual({
      cases: 3,
      exact_match: 1 / 3,
      gt_objects: 2,
      recall_iou50: 0.5,
      mean_iou: 0.55,
      precision_iou50: 0.25,
      empty_cases: 2,
      empty_cases_correct: 1,
    });
  });
});

describe("the metrics reproduce the reference scores recorded with the shapes eval set", () => {
  it("scoring the reference model's recorded answers gives the recorded metrics (4-decimal rounding)", async () => {
    const { set } = await loadShapesEval();
    const images = new Map(set.images.map((i) => [i.image, i]));
    const outcomes = set.cases.map((c) => scoreCase(c, images.get(c.image)!, { text: c.answer! }));
    const metrics = summarize(outcomes) as unknown as Record<string, Record<string, number>>;
    const reference = referenceMetrics(set);
    expect(Object.keys(metrics).sort()).toEqual(["caption", "color", "count", "detect"]);
    for (const [kind, values] of Object.entries(metrics)) {
      for (const [name, value] of Object.entries(values)) {
        expect(reference[kind][name], `${kind}.${name}`).toBeCloseTo(value, 4);
      }
    }
    expect(reference.detect.recall_iou50).toBe(0.5062); // the README's table: 50.6 % of 81 objects
  });
});
