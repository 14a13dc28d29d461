import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { findStop, holdBackLength, StopCriteria } from "../../shared/generation/stopping.ts";

const EOS = 1;

describe("StopCriteria", () => {
  it("stops on eos with the text so far", () => {
    const s = new StopCriteria({ eos: [EOS], maxTokens: 10 });
    expect(s.check(326, "a")).toEqual({ stop: false });
    expect(s.check(EOS, "a")).toEqual({ stop: true, reason: "eos", trimmedText: "a" });
    expect(s.count).toBe(2);
  });

  it("stops on the token limit", () => {
    const s = new StopCriteria({ eos: [EOS], maxTokens: 3 });
    expect(s.check(5, "a").stop).toBe(false);
    expect(s.check(6, "ab").stop).toBe(false);
    expect(s.check(7, "abc")).toEqual({ stop: true, reason: "length", trimmedText: "abc" });
  });

  it("prefers eos over the limit when the last allowed token is eos", () => {
    const s = new StopCriteria({ eos: [EOS, 107], maxTokens: 1 });
    expect(s.check(107, "")).toEqual({ stop: true, reason: "eos", trimmedText: "" });
  });

  it("cuts the text before a stop string, also one spanning tokens", () => {
    const s = new StopCriteria({ eos: [EOS], maxTokens: 10, stop: ["END", "\n\n"] });
    expect(s.check(10, "hello E").stop).toBe(false);
    expect(s.check(11, "hello EN").stop).toBe(false);
    expect(s.check(12, "hello END and more")).toEqual({ stop: true, reason: "stop", trimmedText: "hello " });
  });

  it("picks the earliest stop string and prefers it over the limit", () => {
    const s = new StopCriteria({ eos: [EOS], maxTokens: 1, stop: ["circle", " ;"] });
    expect(s.check(9, "<loc0001> square ; a circle")).toEqual({
      stop: true,
      reason: "stop",
      trimmedText: "<loc0001> square",
    });
  });

  it("holds back exactly the tail that could start a stop string", () => {
    expect(holdBackLength("hello EN", ["END"])).toBe(2);
    expect(holdBackLength("hello E", ["END", "Ex"])).toBe(1);
    expect(holdBackLength("hello", ["END"])).toBe(0);
    expect(holdBackLength("xaa", ["aaa"])).toBe(2);
    expect(holdBackLength("ab", ["abc", "b"])).toBe(2);
    expect(holdBackLength("anything", [])).toBe(0);
    expect(new StopCriteria({ eos: [], maxTokens: 5, stop: [";;"] }).holdBack("a;")).toBe(1);
  });

  it("findStop only reports matches that end after `from`", () => {
    expect(findStop("abcabc", ["abc"], 0)).toBe(0);
    expect(findStop("abcabc", ["abc"], 3)).toBe(3);
    expect(findStop("abcab", ["abc"], 3)).toBe(-1);
    expect(findStop("xxab", ["abc", "b"], 0)).toBe(3);
  });

  it("rejects invalid options with InputError", () => {
    const param = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(InputError);
        return (err as InputError).param;
      }
      return undefined;
    };
    expect(param(() => new StopCriteria({ eos: [EOS], maxTokens: 0 }))).toBe("max_tokens");
    expect(param(() => new StopCriteria({ eos: [EOS], maxTokens: 2.5 }))).toBe("max_tokens");
    expect(param(() => new StopCriteria({ eos: [EOS], maxTokens: 4, stop: [""] }))).toBe("stop");
  });

  it("streams text that never shows part of a stop string and never retracts (property)", () => {
    const alphabet = fc.constantFrom("a", "b", "c", " ", ";");
    const word = fc.array(alphabet, { minLength: 1, maxLength: 4 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 25 }), fc.array(word, { minLength: 1, maxLength: 3 }), (chunks, stops) => {
        const s = new StopCriteria({ eos: [EOS], maxTokens: chunks.length, stop: stops });
        let text = "";
        let streamed = "";
        let final: string | undefined;
        for (const chunk of chunks) {
          text += chunk;
          const r = s.check(42, text);
          if (r.stop) {
            final = r.trimmedText;
            break;
          }
          const visible = text.slice(0, text.length - s.holdBack(text));
          expect(visible.startsWith(streamed)).toBe(true); // nothing shown is ever taken back
          streamed = visible;
        }
        // Like OpenAI: everything before the first occurrence of any stop string, or all of it.
        const firsts = stops.map((st) => text.indexOf(st)).filter((i) => i >= 0);
        const expected = firsts.length > 0 ? text.slice(0, Math.min(...firsts)) : text;
        expect(final).toBe(expected);
        expect(expected.startsWith(streamed)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
