import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { answerFields, MASK_UNAVAILABLE, parseLocAnswer } from "../../shared/tasks/index.ts";
import { SHAPES_EVAL_DIR } from "./shapes-eval.ts";

const loc = (...bins: number[]): string => bins.map((b) => `<loc${String(b).padStart(4, "0")}>`).join("");
const seg = (...codes: number[]): string => codes.map((c) => `<seg${String(c).padStart(3, "0")}>`).join("");
const CODES = Array.from({ length: 16 }, (_, i) => i * 8);
const SQUARE = { width: 1024, height: 1024 };

describe("parseLocAnswer: the grammar of docs/paligemma.md", () => {
  it("parses one object: <locY1><locX1><locY2><locX2> label, scaled by loc/1024 × the original size", () => {
    const answer = parseLocAnswer(`${loc(512, 96, 874, 437)} circle`, { width: 96, height: 96 });
    expect(answer).toEqual({
      detections: [
        {
          label: "circle",
          box: { x1: 9, y1: 48, x2: (437 / 1024) * 96, y2: (874 / 1024) * 96 },
          box_normalized: { x1: 96 / 1024, y1: 0.5, x2: 437 / 1024, y2: 874 / 1024 },
        },
      ],
      segments: [],
      dropped: [],
    });
  });

  it("scales x by the width and y by the height of a non-square image", () => {
    const [d] = parseLocAnswer(`${loc(256, 512, 768, 1023)} car`, { width: 200, height: 100 }).detections;
    expect(d.box).toEqual({ x1: 100, y1: 25, x2: (1023 / 1024) * 200, y2: 75 });
  });

  it("parses several objects joined by ' ; ', in order, with repeated and multi-word labels", () => {
    const text = `${loc(10, 20, 30, 40)} red car ; ${loc(50, 60, 70, 80)} dog ; ${loc(1, 2, 3, 4)} dog`;
    const { detections, dropped } = parseLocAnswer(text, SQUARE);
    expect(detections.map((d) => [d.label, d.box])).toEqual([
      ["red car", { x1: 20, y1: 10, x2: 40, y2: 30 }],
      ["dog", { x1: 60, y1: 50, x2: 80, y2: 70 }],
      ["dog", { x1: 2, y1: 1, x2: 4, y2: 3 }],
    ]);
    expect(dropped).toEqual([]);
  });

  it("accepts free spacing: none before the label, none or several around ';', surrounding blanks", () => {
    const text = `  ${loc(10, 20, 30, 40)}cat;${loc(50, 60, 70, 80)}   dog  ;  ${loc(1, 2, 3, 4)} bird \n`;
    expect(parseLocAnswer(text, SQUARE).detections.map((d) => d.label)).toEqual(["cat", "dog", "bird"]);
  });

  it.each(["", "   ", "\n"])("an empty answer %j has no objects and drops nothing", (text) => {
    expect(parseLocAnswer(text, SQUARE)).toEqual({ detections: [], segments: [], dropped: [] });
  });

  it("parses a segmentation object: box, 16 codes in token order, mask null with a reason", () => {
    const { detections, segments } = parseLocAnswer(`${loc(100, 200, 300, 400)}${seg(...CODES)} cat`, SQUARE);
    expect(detections).toEqual([]);
    expect(segments).toEqual([
      {
        label: "cat",
        box: { x1: 200, y1: 100, x2: 400, y2: 300 },
        box_normalized: { x1: 200 / 1024, y1: 100 / 1024, x2: 400 / 1024, y2: 300 / 1024 },
        codes: CODES,
        mask: null,
        mask_reason: MASK_UNAVAILABLE,
      },
    ]);
  });

  it("splits a mixed answer: boxes without seg codes are detections, with 16 codes segments", () => {
    const text = `${loc(1, 2, 3, 4)}${seg(...CODES)} cat ; ${loc(5, 6, 7, 8)} dog ; ${loc(9, 10, 11, 12)}${seg(...CODES.map((c) => 127 - c))} cat`;
    const { detections, segments, dropped } = parseLocAnswer(text, SQUARE);
    expect(detections.map((d) => d.label)).toEqual(["dog"]);
    expect(segments.map((s) => [s.label, s.box.y1, s.codes[0]])).toEqual([
      ["cat", 1, 0],
      ["cat", 9, 127],
    ]);
    expect(dropped).toEqual([]);
  });

  it.each([
    ["3 loc tokens", `${loc(1, 2, 3)} cat`, "expected 4 loc tokens, got 3"],
    ["5 loc tokens", `${loc(1, 2, 3, 4, 5)} cat`, "expected 4 loc tokens, got 5"],
    ["loc out of range", `<loc1024>${loc(2, 3, 4)} cat`, "loc value out of range 0..1023"],
    ["7 seg tokens", `${loc(1, 2, 3, 4)}${seg(...CODES.slice(0, 7))} cat`, "expected 0 or 16 seg tokens, got 7"],
    ["17 seg tokens", `${loc(1, 2, 3, 4)}${seg(...CODES, 1)} cat`, "expected 0 or 16 seg tokens, got 17"],
    ["seg out of range", `${loc(1, 2, 3, 4)}${seg(128, ...CODES.slice(1))} cat`, "seg value out of range 0..127"],
    ["seg before loc", `${seg(...CODES)}${loc(1, 2, 3, 4)} cat`, "text before the box"],
    ["short loc token", `<loc12>${loc(1, 2, 3)} cat`, "expected 4 loc tokens, got 0"],
    ["no label", loc(1, 2, 3, 4), "missing label"],
    ["text before the box", `the cat ${loc(1, 2, 3, 4)} cat`, "text before the box"],
    ["no box at all", "a red circle", "text before the box"],
    ["two objects without separator", `${loc(1, 2, 3, 4)} cat${loc(5, 6, 7, 8)} dog`, "loc/seg token inside the label"],
    ["angle brackets in the label", `${loc(1, 2, 3, 4)} <unk>`, '"<" or ">" in the label'],
    ["inverted y", `${loc(30, 2, 10, 4)} cat`, "empty or inverted box"],
    ["inverted x", `${loc(1, 40, 3, 20)} cat`, "empty or inverted box"],
    ["zero height", `${loc(10, 2, 10, 4)} cat`, "empty or inverted box"],
  ])("drops and counts a malformed object: %s", (_, bad, reason) => {
    const text = `${loc(100, 100, 200, 200)} good ; ${bad} ; ${loc(300, 300, 400, 400)} also good`;
    const { detections, dropped } = parseLocAnswer(text, SQUARE);
    expect(detections.map((d) => d.label)).toEqual(["good", "also good"]);
    expect(dropped).toEqual([{ text: bad, reason }]);
  });

  it("drops the empty tail of an answer cut off after ' ;' and a truncated last object", () => {
    expect(parseLocAnswer(`${loc(1, 2, 3, 4)} cat ;`, SQUARE).dropped).toEqual([{ text: "", reason: "empty object" }]);
    const cut = parseLocAnswer(`${loc(1, 2, 3, 4)} cat ; <loc0005><loc0006>`, SQUARE);
    expect([cut.detections.length, cut.dropped.map((d) => d.reason)]).toEqual([1, ["expected 4 loc tokens, got 2"]]);
  });

  it("rejects a size that is not positive integers", () => {
    expect(() => parseLocAnswer("", { width: 0, height: 10 })).toThrow(RangeError);
    expect(() => parseLocAnswer("", { width: 10.5, height: 10 })).toThrow(RangeError);
  });

  it("round-trips any well-formed answer (property)", () => {
    const bins = fc.integer({ min: 0, max: 1022 }).chain((a) => fc.tuple(fc.constant(a), fc.integer({ min: a + 1, max: 1023 })));
    const object = fc.record({
      y: bins,
      x: bins,
      label: fc.stringMatching(/^[a-z][a-z ]{0,10}[a-z]$/),
      codes: fc.option(fc.array(fc.integer({ min: 0, max: 127 }), { minLength: 16, maxLength: 16 })),
    });
    fc.assert(
      fc.property(fc.array(object, { maxLength: 5 }), fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 1, max: 4000 }), (objects, width, height) => {
        const text = objects.map((o) => `${loc(o.y[0], o.x[0], o.y[1], o.x[1])}${o.codes ? seg(...o.codes) : ""} ${o.label}`).join(" ; ");
        const parsed = parseLocAnswer(text, { width, height });
        expect(parsed.dropped).toEqual([]);
        const all = [...parsed.detections, ...parsed.segments];
        expect(all.length).toBe(objects.length);
        expect(parsed.segments.map((s) => s.codes)).toEqual(objects.flatMap((o) => (o.codes ? [o.codes] : [])));
        const expected = objects.filter((o) => !o.codes).map((o) => ({ label: o.label, x1: (o.x[0] / 1024) * width, y2: (o.y[1] / 1024) * height }));
        expect(parsed.detections.map((d) => ({ label: d.label, x1: d.box.x1, y2: d.box.y2 }))).toEqual(expected);
      }),
    );
  });
});

describe("parseLocAnswer agrees with the shapes README's decoding of the reference answers", () => {
  interface RawCase {
    kind: string;
    width: number;
    height: number;
    answer: string;
    pred_boxes: { label: string; x1: number; y1: number; x2: number; y2: number }[];
  }
  const cases = (JSON.parse(readFileSync(join(SHAPES_EVAL_DIR, "cases.json"), "utf8")) as { cases: RawCase[] }).cases;
  const detect = cases.filter((c) => c.kind === "detect");

  it("has the 96 detect cases", () => expect(detect.length).toBe(96));

  it("gives every recorded pred_box (rounded to 3 decimals there) for every answer, dropping nothing", () => {
    let boxes = 0;
    for (const c of detect) {
      const parsed = parseLocAnswer(c.answer, c);
      expect(parsed.dropped).toEqual([]);
      expect(parsed.detections.map((d) => d.label), c.answer).toEqual(c.pred_boxes.map((b) => b.label));
      parsed.detections.forEach(({ box }, i) => {
        const want = c.pred_boxes[i];
        for (const k of ["x1", "y1", "x2", "y2"] as const) expect(Math.abs(box[k] - want[k]), `${c.answer} ${k}`).toBeLessThanOrEqual(0.0005 + 1e-9);
        boxes++;
      });
    }
    expect(boxes).toBe(68);
  });
});

describe("answerFields: which answers get structured fields", () => {
  const size = { width: 160, height: 120 };
  it("adds fields for any answer with loc tokens, whatever the prompt", () => {
    const fields = answerFields(`${loc(0, 0, 512, 512)} circle ; ${loc(5, 5, 1, 1)} square`, size, "find things");
    expect(fields).toMatchObject({ detections: [{ label: "circle", box: { x1: 0, y1: 0, x2: 80, y2: 60 } }], segments: [], dropped: 1 });
  });
  it("adds empty fields for an empty answer to a detect or segment prefix", () => {
    expect(answerFields("", size, "detect circle ; square")).toEqual({ detections: [], segments: [], dropped: 0 });
    expect(answerFields("", size, "segment cat")).toEqual({ detections: [], segments: [], dropped: 0 });
  });
  it("counts a box-less answer to a detect prefix as dropped", () => {
    expect(answerFields("no circle", size, "detect circle")).toEqual({ detections: [], segments: [], dropped: 1 });
  });
  it("adds nothing to other answers", () => {
    expect(answerFields("a red circle", size, "caption en")).toBeNull();
    expect(answerFields("", size, "ocr")).toBeNull();
  });
  it("puts the session's decoded masks into the segments, in order, and drops their reason", () => {
    const text = `${loc(0, 0, 512, 512)}${seg(...CODES)} cat ; ${loc(1, 1, 9, 9)} box ; ${loc(600, 0, 1000, 512)}${seg(...CODES)} dog`;
    const masks = [{ size: [120, 160] as const, counts: "a" }, { size: [120, 160] as const, counts: "b" }];
    const fields = answerFields(text, size, "segment cat ; dog", masks)!;
    expect(fields.segments.map((s) => [s.label, s.mask, "mask_reason" in s])).toEqual([["cat", masks[0], false], ["dog", masks[1], false]]);
    expect(fields.detections.map((d) => d.label)).toEqual(["box"]);
    expect(answerFields(text, size, "segment cat")!.segments.map((s) => s.mask_reason)).toEqual([MASK_UNAVAILABLE, MASK_UNAVAILABLE]);
    expect(() => answerFields(text, size, "segment cat", masks.slice(1))).toThrow(/1 masks for 2 segments/);
  });
});
