import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IncrementalDetokenizer } from "../../shared/text/detokenizer.ts";
import { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";

// Reference material lives beside the checkout (/work/shared); a missing file fails the suite, never skips it.
const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? fileURLToPath(new URL("../../../shared/", import.meta.url));
const MODEL = join(SHARED, "models/paligemma-shapes");
const readJson = (path: string): any => JSON.parse(readFileSync(path, "utf8"));

const tok = PaliGemmaTokenizer.fromJson(
  readJson(join(MODEL, "tokenizer.json")),
  readJson(join(MODEL, "tokenizer_config.json")),
);
const cases: Array<{ answer: string; answer_ids: number[] }> = readJson(join(MODEL, "eval/cases.json")).cases;

/** Pushes every id, then flushes; returns the deltas (flush's last). */
function stream(ids: readonly number[]): { deltas: string[]; detok: IncrementalDetokenizer } {
  const detok = new IncrementalDetokenizer(tok);
  const deltas = ids.map((id) => detok.push(id));
  deltas.push(detok.flush());
  return { deltas, detok };
}

// Shapes tokenizer id ranges (README "Tokenizer"): specials 0–3 and 1587, bytes 4–259, pieces 260–434,
// <loc> 435–1458, <seg> 1459–1586.
const anyId = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 2, 3, 1587) },
  { weight: 6, arbitrary: fc.integer({ min: 4, max: 259 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0x80 + 4, max: 0xbf + 4 }) }, // continuation bytes, to complete sequences
  { weight: 4, arbitrary: fc.integer({ min: 260, max: 434 }) },
  { weight: 2, arbitrary: fc.integer({ min: 435, max: 1586 }) },
);
const utf8Ids = fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => tok.encode(s));

describe("IncrementalDetokenizer", () => {
  it("streams every recorded answer to exactly decode(answer_ids)", () => {
    for (const c of cases) {
      const { deltas, detok } = stream(c.answer_ids);
      expect(deltas.join("")).toBe(c.answer);
      expect(detok.text).toBe(c.answer);
      expect(detok.length).toBe(c.answer_ids.length);
    }
  });

  it("emits <loc> tokens as their text, one delta per token", () => {
    const { deltas } = stream([947, 531, 1309, 872, 369, 1]);
    expect(deltas).toEqual(["<loc0512>", "<loc0096>", "<loc0874>", "<loc0437>", " circle", "", ""]);
  });

  it("holds back a multi-byte character until its last byte token arrives", () => {
    const emoji = tok.encode("😀");
    expect(emoji).toEqual([4 + 0xf0, 4 + 0x9f, 4 + 0x98, 4 + 0x80]);
    expect(stream([326, ...emoji, 1]).deltas).toEqual(["a", "", "", "", "😀", "", ""]);
    const e = tok.encode("é");
    expect(stream(e).deltas).toEqual(["", "é", ""]);
  });

  it("emits an incomplete trailing sequence on flush, as decode does", () => {
    const { deltas } = stream([326, 4 + 0xf0, 4 + 0x9f]);
    expect(deltas).toEqual(["a", "", "", "\uFFFD"]);
    expect(deltas.join("")).toBe(tok.decode([326, 4 + 0xf0, 4 + 0x9f]));
  });

  it("never retracts: text so far is always a prefix of the final decode (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(anyId.map((id) => [id]), utf8Ids), { maxLength: 30 }), (chunks) => {
        const ids = chunks.flat();
        const full = tok.decode(ids);
        const detok = new IncrementalDetokenizer(tok);
        let joined = "";
        for (const id of ids) {
          joined += detok.push(id);
          expect(full.startsWith(detok.text)).toBe(true);
        }
        joined += detok.flush();
        expect(joined).toBe(full);
        expect(detok.text).toBe(full);
      }),
      { numRuns: 500 },
    );
  });

  it("decodes a small trailing window, not the whole sequence, per token", () => {
    let longest = 0;
    const spy = Object.create(tok) as PaliGemmaTokenizer;
    spy.decode = (ids: readonly number[]): string => {
      longest = Math.max(longest, ids.length);
      return tok.decode(ids);
    };
    const ids = Array.from({ length: 400 }, (_, i) => [326, 390, 364, 273, 947, 1][i % 6]);
    const detok = new IncrementalDetokenizer(spy);
    for (const id of ids) detok.push(id);
    detok.flush();
    expect(detok.text).toBe(tok.decode(ids));
    expect(longest).toBeLessThanOrEqual(3);
  });

  it("refuses push after flush", () => {
    const detok = new IncrementalDetokenizer(tok);
    detok.push(326);
    detok.flush();
    expect(detok.flush()).toBe("");
    expect(() => detok.push(326)).toThrow();
  });
});
