import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { createRng, type Rng } from "../../shared/generation/rng.ts";
import { sample, type SamplingParams, type VocabMask } from "../../shared/generation/sampler.ts";

const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1 };
const PLAIN: SamplingParams = { temperature: 1, topK: 0, topP: 1 };
const NO_MASK = (v: number): VocabMask => ({ validTokens: v, banned: [] });

/** Random logits in [-scale, scale) from a seeded generator (not the sampler's). */
function randomLogits(n: number, seed: number, scale = 8): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}

/** Independent argmax over allowed ids (first maximum wins). */
function argmax(logits: Float32Array, allowed: (i: number) => boolean): number {
  let best = -1;
  for (let i = 0; i < logits.length; i++) if (allowed(i) && (best < 0 || logits[i] > logits[best])) best = i;
  return best;
}

/** Independent log-softmax over allowed ids, straight from the definition in float64. */
function logSoftmax(logits: Float32Array, id: number, allowed: (i: number) => boolean): number {
  let z = 0;
  for (let i = 0; i < logits.length; i++) if (allowed(i)) z += Math.exp(logits[i]);
  return Math.log(Math.exp(logits[id]) / z);
}

/** Frequencies of each id over n draws. */
function frequencies(logits: Float32Array, params: SamplingParams, n: number, seed: number): number[] {
  const rng = createRng(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sample(logits, params, NO_MASK(logits.length), rng).id]++;
  return counts.map((c) => c / n);
}

function expectClose(actual: number[], expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]), `id ${i}: ${a} vs ${expected[i]}`).toBeLessThan(tol));
}

const FOUR_WAY = Float32Array.from([0.1, 0.2, 0.3, 0.4], Math.log);

describe("sample: greedy", () => {
  it("returns the argmax and consumes no randomness", () => {
    const throwing: Rng = { next: () => { throw new Error("greedy must not draw"); } };
    for (let seed = 0; seed < 20; seed++) {
      const logits = randomLogits(1000, seed);
      expect(sample(logits, GREEDY, NO_MASK(1000), throwing).id).toBe(argmax(logits, () => true));
    }
  });

  it("breaks ties toward the lowest id", () => {
    expect(sample(Float32Array.from([1, 5, 3, 5, 5]), GREEDY, NO_MASK(5), createRng(0)).id).toBe(1);
  });

  it("never returns masked ids, even with the largest logits", () => {
    const logits = randomLogits(1600, 3);
    logits[1595] = 100; // padded embedding row
    logits[1587] = 99; // <image>
    logits[0] = 98; // <pad>
    const mask: VocabMask = { validTokens: 1588, banned: [1587, 0] };
    const allowed = (i: number): boolean => i < 1588 && i !== 1587 && i !== 0;
    expect(sample(logits, GREEDY, mask, createRng(0)).id).toBe(argmax(logits, allowed));
    const rng = createRng(1);
    for (let i = 0; i < 2000; i++) {
      const { id } = sample(logits, { temperature: 5, topK: 0, topP: 1 }, mask, rng);
      expect(allowed(id), `sampled masked id ${id}`).toBe(true);
    }
    for (const params of [{ temperature: 2, topK: 3, topP: 1 }, { temperature: 2, topK: 0, topP: 0.5 }]) {
      for (let i = 0; i < 200; i++) expect(allowed(sample(logits, params, mask, rng).id)).toBe(true);
    }
  });
});

describe("sample: randomness", () => {
  it("is reproducible per seed and differs across seeds", () => {
    const logits = randomLogits(5000, 9, 2);
    const run = (seed: number): number[] => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, () => sample(logits, { temperature: 1, topK: 50, topP: 0.95 }, NO_MASK(5000), rng).id);
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });

  it("top-k 1 and a tiny top-p both equal greedy", () => {
    for (let seed = 0; seed < 20; seed++) {
      const logits = randomLogits(3000, 100 + seed, 3);
      const greedy = sample(logits, GREEDY, NO_MASK(3000), createRng(0));
      const rng = createRng(seed);
      for (const temperature of [0.5, 1, 3]) {
        expect(sample(logits, { temperature, topK: 1, topP: 1 }, NO_MASK(3000), rng)).toEqual(greedy);
        expect(sample(logits, { temperature, topK: 0, topP: 1e-9 }, NO_MASK(3000), rng)).toEqual(greedy);
      }
    }
  });

  it("draws a known 4-way distribution within ±0.02 (20k draws)", () => {
    expectClose(frequencies(FOUR_WAY, PLAIN, 20_000, 1), [0.1, 0.2, 0.3, 0.4], 0.02);
  });

  it("applies temperature, top-k and top-p with renormalisation", () => {
    const n = 20_000;
    // T = 0.5 squares the probabilities: [1, 4, 9, 16] / 30.
    expectClose(frequencies(FOUR_WAY, { temperature: 0.5, topK: 0, topP: 1 }, n, 2), [1 / 30, 4 / 30, 9 / 30, 16 / 30], 0.02);
    // top-k 3 drops 0.1: [0, 0.2, 0.3, 0.4] / 0.9.
    expectClose(frequencies(FOUR_WAY, { temperature: 1, topK: 3, topP: 1 }, n, 3), [0, 2 / 9, 3 / 9, 4 / 9], 0.02);
    // top-p 0.65: the smallest set reaching 0.65 is {0.4, 0.3}.
    expectClose(frequencies(FOUR_WAY, { temperature: 1, topK: 0, topP: 0.65 }, n, 4), [0, 0, 3 / 7, 4 / 7], 0.02);
    // top-p 0.71 needs a third token: {0.4, 0.3, 0.2} / 0.9.
    expectClose(frequencies(FOUR_WAY, { temperature: 1, topK: 0, topP: 0.71 }, n, 5), [0, 2 / 9, 3 / 9, 4 / 9], 0.02);
    // top-k then top-p: top-2 renormalised is {3/7, 4/7}; p 0.5 keeps only 4/7.
    expectClose(frequencies(FOUR_WAY, { temperature: 1, topK: 2, topP: 0.5 }, n, 6), [0, 0, 0, 1], 1e-9);
  });

  it("matches an independent nucleus over many histogram bins", () => {
    const logits = Float32Array.from({ length: 40 }, (_, i) => -0.3 * i);
    // Independent: probabilities in id order (already sorted), smallest prefix reaching 0.8, renormalised.
    const p = Array.from(logits, (l) => Math.exp(l));
    const z = p.reduce((a, b) => a + b, 0);
    let kept = 0;
    for (let cum = 0; cum < 0.8 * z; kept++) cum += p[kept];
    const keptMass = p.slice(0, kept).reduce((a, b) => a + b, 0);
    const expected = p.map((x, i) => (i < kept ? x / keptMass : 0));
    expect(kept).toBeGreaterThan(4);
    expectClose(frequencies(logits, { temperature: 1, topK: 0, topP: 0.8 }, 20_000, 9), expected, 0.02);
  });

  it("breaks ties at the top-k / top-p boundary toward the lower id", () => {
    const logits = Float32Array.from([2, 1, 1, 1, 0]);
    const e = [Math.exp(2), Math.exp(1)];
    const expected = [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1]), 0, 0, 0];
    expectClose(frequencies(logits, { temperature: 1, topK: 0, topP: 0.5 }, 20_000, 10), expected, 0.02);
    expectClose(frequencies(logits, { temperature: 1, topK: 2, topP: 1 }, 20_000, 11), expected, 0.02);
  });

  it("keeps exactly the nucleus on a 257k vocabulary", () => {
    const V = 257_216;
    const logits = randomLogits(V, 77, 12);
    const mask: VocabMask = { validTokens: 257_152, banned: [0] };
    const allowed = (i: number): boolean => i > 0 && i < 257_152;
    // Independent nucleus: full sort, cumulative probability at temperature 1.5.
    const ids = Array.from({ length: V }, (_, i) => i).filter(allowed).sort((a, b) => logits[b] - logits[a] || a - b);
    const w = ids.map((i) => Math.exp((logits[i] - logits[ids[0]]) / 1.5));
    const total = w.reduce((a, b) => a + b, 0);
    const nucleus = new Set<number>();
    for (let j = 0, cum = 0; cum < 0.9 * total; j++) (cum += w[j]), nucleus.add(ids[j]);
    const top40 = new Set(ids.slice(0, 40));
    const rng = createRng(8);
    for (let i = 0; i < 100; i++) {
      expect(nucleus.has(sample(logits, { temperature: 1.5, topK: 0, topP: 0.9 }, mask, rng).id)).toBe(true);
      expect(top40.has(sample(logits, { temperature: 1.5, topK: 40, topP: 1 }, mask, rng).id)).toBe(true);
    }
  });
});

describe("sample: logprob", () => {
  it("is the log-softmax of the raw masked logits, whatever the temperature", () => {
    const logits = randomLogits(700, 21, 6);
    const mask: VocabMask = { validTokens: 650, banned: [5, 17] };
    const allowed = (i: number): boolean => i < 650 && i !== 5 && i !== 17;
    const rng = createRng(4);
    for (const params of [GREEDY, PLAIN, { temperature: 0.3, topK: 10, topP: 1 }, { temperature: 2, topK: 0, topP: 0.8 }]) {
      for (let i = 0; i < 20; i++) {
        const { id, logprob } = sample(logits, params, mask, rng);
        expect(Math.abs(logprob - logSoftmax(logits, id, allowed))).toBeLessThan(1e-5);
      }
    }
  });

  it("is stable for large logits", () => {
    const logits = Float32Array.from([1000, 999, -1000]);
    const { id, logprob } = sample(logits, GREEDY, NO_MASK(3), createRng(0));
    expect(id).toBe(0);
    expect(Math.abs(logprob - -Math.log1p(Math.exp(-1)))).toBeLessThan(1e-6);
  });
});

describe("sample: top logprobs", () => {
  it("are the k best allowed ids of the raw distribution, best first, whatever the sampling settings", () => {
    const logits = randomLogits(700, 33, 6);
    const mask: VocabMask = { validTokens: 650, banned: [5, 17] };
    const allowed = (i: number): boolean => i < 650 && i !== 5 && i !== 17;
    const best = Array.from({ length: 700 }, (_, i) => i)
      .filter(allowed)
      .sort((a, b) => logits[b] - logits[a] || a - b)
      .slice(0, 5);
    const rng = createRng(9);
    for (const params of [GREEDY, PLAIN, { temperature: 0.3, topK: 2, topP: 1 }, { temperature: 2, topK: 0, topP: 0.5 }]) {
      const { id, logprob, top } = sample(logits, params, mask, rng, 5);
      expect(top!.map((t) => t.id)).toEqual(best);
      for (const t of top!) expect(Math.abs(t.logprob - logSoftmax(logits, t.id, allowed))).toBeLessThan(1e-5);
      const self = top!.find((t) => t.id === id);
      if (self) expect(self.logprob).toBe(logprob); // the same number for the chosen token
    }
  });

  it("are not computed unless asked, and never more than the allowed ids", () => {
    const logits = Float32Array.from([3, 1, 2, 2]);
    expect(sample(logits, GREEDY, NO_MASK(4), createRng(0))).not.toHaveProperty("top");
    const { top } = sample(logits, GREEDY, { validTokens: 4, banned: [0] }, createRng(0), 10);
    expect(top!.map((t) => t.id)).toEqual([2, 3, 1]); // ties → lower id; 0 is masked
    expect(() => sample(logits, GREEDY, NO_MASK(4), createRng(0), -1)).toThrow(RangeError);
  });
});

describe("sample: validation", () => {
  const logits = Float32Array.from([1, 2, 3]);
  const cases: Array<[Partial<SamplingParams>, string]> = [
    [{ temperature: -0.1 }, "temperature"],
    [{ temperature: Number.NaN }, "temperature"],
    [{ temperature: Number.POSITIVE_INFINITY }, "temperature"],
    [{ topK: -1 }, "top_k"],
    [{ topK: 1.5 }, "top_k"],
    [{ topP: 0 }, "top_p"],
    [{ topP: 1.01 }, "top_p"],
    [{ topP: Number.NaN }, "top_p"],
  ];
  it.each(cases)("rejects %o with InputError(unprocessable, param %s)", (bad, param) => {
    let caught: unknown;
    try {
      sample(logits, { ...PLAIN, ...bad }, NO_MASK(3), createRng(0));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).type).toBe("unprocessable");
    expect((caught as InputError).param).toBe(param);
  });

  it("fails loudly on NaN logits or when nothing can be sampled", () => {
    expect(() => sample(Float32Array.from([1, Number.NaN]), PLAIN, NO_MASK(2), createRng(0))).toThrow(/NaN/);
    expect(() => sample(logits, GREEDY, { validTokens: 3, banned: [0, 1, 2] }, createRng(0))).toThrow();
    expect(() => sample(Float32Array.from([-Infinity, -Infinity]), PLAIN, NO_MASK(2), createRng(0))).toThrow();
    expect(() => sample(logits, GREEDY, { validTokens: 0, banned: [] }, createRng(0))).toThrow(RangeError);
  });
});
