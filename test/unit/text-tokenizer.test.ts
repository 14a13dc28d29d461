import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { InputError, ModelFormatError } from "../../shared/errors.ts";
import type { SpecialTokens } from "../../shared/model/config.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { PaliGemmaTokenizer } from "../../shared/text/tokenizer.ts";

// Reference material lives beside the checkout (/work/shared); a missing file fails the suite, never skips it.
const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? fileURLToPath(new URL("../../../shared/", import.meta.url));
const MODEL = join(SHARED, "models/paligemma-shapes");
const GOLDEN = join(SHARED, "golden/paligemma-shapes");
const readJson = (path: string): any => JSON.parse(readFileSync(path, "utf8"));

const tokenizerJson = readJson(join(MODEL, "tokenizer.json"));
const tokenizerConfig = readJson(join(MODEL, "tokenizer_config.json"));
const tok = PaliGemmaTokenizer.fromJson(tokenizerJson, tokenizerConfig);
const cases: Array<{ prefix: string; expected: string; answer: string; answer_ids: number[]; eos_hit: boolean }> =
  readJson(join(MODEL, "eval/cases.json")).cases;

// paligemma-shapes README, "Tokenizer" / "Model": image_token_index 1587, bos 2, eos 1, pad 0, 36 image tokens.
const SPECIAL: SpecialTokens = { bos: 2, eos: 1, pad: 0, image: 1587 };
const IMAGE_TOKENS = 36;
const NEWLINE = 261;

describe("PaliGemmaTokenizer (paligemma-shapes)", () => {
  it("knows 1588 tokens and the documented special/added ids", () => {
    expect(tok.size).toBe(1588);
    expect(tok.idOf("<pad>")).toBe(0);
    expect(tok.idOf("<eos>")).toBe(1);
    expect(tok.idOf("<bos>")).toBe(2);
    expect(tok.idOf("<unk>")).toBe(3);
    expect(tok.idOf("<0x00>")).toBe(4);
    expect(tok.idOf("<0xFF>")).toBe(259);
    expect(tok.idOf("<loc0000>")).toBe(435);
    expect(tok.idOf("<loc1023>")).toBe(1458);
    expect(tok.idOf("<seg000>")).toBe(1459);
    expect(tok.idOf("<seg127>")).toBe(1586);
    expect(tok.idOf("<image>")).toBe(1587);
    expect(tok.idOf("<no such token>")).toBeUndefined();
    expect(tok.tokenOf(1587)).toBe("<image>");
    expect(tok.specialIds).toEqual([0, 1, 2, 3, 1587]);
  });

  it("encodes exact ids with no automatic bos/eos", () => {
    expect(tok.encode("caption en")).toEqual([427, 400]);
    expect(tok.encode("\n")).toEqual([NEWLINE]);
    expect(tok.encode("caption en\n")).toEqual([427, 400, NEWLINE]);
    expect(tok.encode("")).toEqual([]);
  });

  it("decodes skipping specials but keeping <loc>/<seg>", () => {
    expect(tok.decode([2, 326, 1587, 0, 3, 1])).toBe("a");
    expect(tok.decode([435, 1586, 369])).toBe("<loc0000><seg127> circle");
    expect(tok.decode([])).toBe("");
  });

  it("decodes byte-fallback tokens as UTF-8", () => {
    const ids = tok.encode("😀é");
    expect(ids).toEqual([4 + 0xf0, 4 + 0x9f, 4 + 0x98, 4 + 0x80, 4 + 0xc3, 4 + 0xa9]);
    expect(tok.decode(ids)).toBe("😀é");
  });

  it("rejects ids outside the vocabulary", () => {
    expect(() => tok.decode([1588])).toThrow(RangeError);
    expect(() => tok.decode([326, -1])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
  });

  it("never applies the clean-up rewrite, even without tokenizer_config.json", () => {
    const bare = PaliGemmaTokenizer.fromJson(tokenizerJson);
    expect(bare.decode(bare.encode("a , b !"))).toBe("a , b !");
    expect(tok.decode(tok.encode("a , b !"))).toBe("a , b !");
  });

  it("rejects malformed tokenizer files", () => {
    expect(() => PaliGemmaTokenizer.fromJson(null)).toThrow(ModelFormatError);
    expect(() => PaliGemmaTokenizer.fromJson({ model: {} })).toThrow(ModelFormatError);
    expect(() => PaliGemmaTokenizer.fromJson(tokenizerJson, "x")).toThrow(ModelFormatError);
  });
});

describe("buildPromptIds", () => {
  it('"caption en" gives [1587]*36 + [2, 427, 400, 261], equal to the golden input_ids.bin', () => {
    const ids = buildPromptIds(tok, "caption en", IMAGE_TOKENS, SPECIAL);
    expect(ids).toEqual([...Array(IMAGE_TOKENS).fill(1587), 2, 427, 400, NEWLINE]);
    const raw = readFileSync(join(GOLDEN, "input_ids.bin"));
    const golden = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8); // int64 [1, 40]
    expect(golden.length).toBe(40);
    expect(ids).toEqual(Array.from(golden, Number));
  });

  it("builds consistent ids for every prefix in cases.json", () => {
    expect(cases.length).toBe(247);
    for (const c of cases) {
      const text = tok.encode(c.prefix);
      const ids = buildPromptIds(tok, c.prefix, IMAGE_TOKENS, SPECIAL);
      expect(ids.length).toBe(IMAGE_TOKENS + 1 + text.length + 1);
      expect(ids.slice(0, IMAGE_TOKENS + 1)).toEqual([...Array(IMAGE_TOKENS).fill(1587), 2]);
      expect(ids.slice(IMAGE_TOKENS + 1, -1)).toEqual(text);
      expect(ids[ids.length - 1]).toBe(NEWLINE);
      // README: every word of the world is one BPE piece (ids 260–434: no bytes, specials, loc or seg).
      expect(text.length).toBe(c.prefix.split(" ").length);
      for (const id of text) expect(id >= 260 && id < 435).toBe(true);
      expect(tok.decode(text)).toBe(c.prefix);
    }
  });

  it("allows newlines inside the prefix and zero image tokens", () => {
    const ids = buildPromptIds(tok, "a\nb", 0, SPECIAL);
    expect(ids).toEqual([2, 326, NEWLINE, 327, NEWLINE]);
  });

  it("rejects a literal <image> in the prefix", () => {
    expect(() => buildPromptIds(tok, "caption <image> en", IMAGE_TOKENS, SPECIAL)).toThrow(InputError);
    let caught: unknown;
    try {
      buildPromptIds(tok, "<image>", IMAGE_TOKENS, SPECIAL);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).type).toBe("unprocessable");
    expect((caught as InputError).param).toBe("prompt");
    expect(() => buildPromptIds(tok, "x", -1, SPECIAL)).toThrow(RangeError);
  });
});

describe("answers in cases.json", () => {
  it("decode(answer_ids) is the recorded answer, with <loc> kept and eos dropped", () => {
    let withLoc = 0;
    for (const c of cases) {
      expect(tok.decode(c.answer_ids)).toBe(c.answer);
      if (c.eos_hit) expect(c.answer_ids[c.answer_ids.length - 1]).toBe(SPECIAL.eos);
      if (c.answer.includes("<loc")) withLoc++;
    }
    expect(withLoc).toBeGreaterThan(0);
  });

  it("encode(answer) + eos reproduces the generated ids (canonical tokenization)", () => {
    for (const c of cases) if (c.eos_hit) expect([...tok.encode(c.answer), SPECIAL.eos]).toEqual(c.answer_ids);
  });

  it("encode(expected) round-trips through decode", () => {
    for (const c of cases) {
      const ids = tok.encode(c.expected);
      expect(ids).not.toContain(3); // no <unk>
      expect(tok.decode(ids)).toBe(c.expected);
    }
  });

  it("the golden greedy ids decode to the golden text", () => {
    const greedy = readJson(join(GOLDEN, "greedy.json"));
    expect(tok.decode(greedy.generated_ids)).toBe(greedy.generated_text);
  });
});
