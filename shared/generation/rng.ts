/**
 * A small seeded PRNG with explicit state: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom
 * number generators", 2018). 32-bit integer ops only, so it is exact and identical in Node, browsers and workerd.
 *
 * The sampler takes an `Rng` argument instead of calling Math.random, so a seeded request is reproducible.
 */
import { InputError } from "../errors.ts";

/** A source of uniform random numbers. */
export interface Rng {
  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number;
}

/** The generator's state: four 32-bit words, not all zero. */
export type RngState = readonly [number, number, number, number];

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A 32-bit integer finaliser (xorshift-multiply, constants from Wellons' hash-prospector "lowbias32"). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** xoshiro128**: 128-bit state, period 2^128 − 1. */
export class Xoshiro128 implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Starts from an explicit state (four uint32 words, not all zero). */
  constructor(state: RngState) {
    if (state.some((w) => !Number.isInteger(w) || w < 0 || w >= TWO_POW_32)) {
      throw new RangeError("rng state words must be uint32");
    }
    if (state.every((w) => w === 0)) throw new RangeError("rng state must not be all zero");
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /** The next 32-bit output, as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** A copy of the current state; `new Xoshiro128(state)` resumes the sequence from here. */
  state(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }
}

/**
 * A generator seeded from a safe integer (negative and > 2^32 allowed, e.g. an OpenAI `seed`). Equal seeds give
 * equal sequences on every platform. Throws InputError("unprocessable", …, "seed") for a non-integer seed.
 */
export function createRng(seed: number): Xoshiro128 {
  if (!Number.isSafeInteger(seed)) {
    throw new InputError("unprocessable", `seed must be an integer, got ${seed}`, "seed");
  }
  const lo = seed >>> 0; // low 32 bits (two's complement for negatives)
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  // Expand the 64-bit seed into four words with a Weyl sequence through the finaliser (splitmix-style).
  let z = mix32(lo ^ mix32(hi ^ 0x6a09e667));
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    z = (z + 0x9e3779b9) >>> 0;
    words.push(mix32(z));
  }
  if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1;
  return new Xoshiro128([words[0], words[1], words[2], words[3]]);
}
