/**
 * Structure-aware fuzzing of the decoders and their budgets (test/fuzz/): PNG chunks, zlib headers and stored
 * blocks, JPEG segments and scans, WebP chunks and animation frames, GIF blocks and LZW data, each lied about. Every case is refused with a 4xx or decoded to its declared
 * size, within a time and memory budget. Fixed seeds; FUZZ_SEED=<n> explores elsewhere. The same generators run
 * inside workerd in test/workers/image-fuzz.test.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { deflate } from "../fuzz/bytes.ts";
import { decodesOrRefuses, FUZZ_CASE_MS } from "../fuzz/check.ts";
import { jpegFiles } from "../fuzz/jpeg-structures.ts";
import { gifFiles } from "../fuzz/gif-structures.ts";
import { pngFiles } from "../fuzz/png-structures.ts";
import { webpFiles } from "../fuzz/webp-structures.ts";
import { SHARED } from "../helpers/golden.ts";
import { GOOD_PNG, jpegDeclaring } from "./support.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const MEMORY_BUDGET = 64 * 1024 * 1024;
/** WebP and GIF seeds: the Pillow fixtures (test/fixtures/images/make-webp-gif.py). */
const FIXTURE = JSON.parse(readFileSync(new URL("../fixtures/images/pillow-webp-gif.json", import.meta.url), "utf8")) as {
  webp: { name: string; webp: string }[];
  gif: { name: string; gif: string }[];
};
const seedsOf = (cases: { name: string }[], key: "webp" | "gif", names: string[]): Uint8Array[] =>
  names.map((n) => new Uint8Array(Buffer.from((cases.find((c) => c.name === n) as Record<string, string>)[key], "base64")));

/** Runs `bytes` through the decoder and checks time and ArrayBuffer memory; returns the outcome. */
async function bounded(bytes: Uint8Array): Promise<string> {
  const before = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  const outcome = await decodesOrRefuses(bytes);
  const ms = performance.now() - t0;
  const grew = process.memoryUsage().arrayBuffers - before;
  if (ms > FUZZ_CASE_MS) throw new Error(`took ${ms.toFixed(0)} ms (budget ${FUZZ_CASE_MS}) for ${bytes.length} bytes`);
  if (grew > MEMORY_BUDGET) throw new Error(`ArrayBuffers grew by ${grew} bytes (budget ${MEMORY_BUDGET})`);
  return outcome;
}

describe("structure-aware image fuzzing (Node)", () => {
  it("PNG: chunk, zlib and metadata lies are refused with a 4xx or decode within budget", async () => {
    const bomb = await deflate(new Uint8Array(4 << 20));
    const seeds = [
      GOOD_PNG,
      encodePng({ width: 9, height: 7, channels: 1, depth: 4, palette: [[0, 0, 0], [255, 9, 9], [1, 2, 3]], data: new Uint8Array(5 * 7) }),
      encodePng({ width: 13, height: 11, channels: 4, depth: 8, data: new Uint8Array(13 * 11 * 4).map((_, i) => i) }, { interlace: "Adam7" }),
    ];
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(pngFiles(seeds, bomb), async (bytes) => {
        const o = await bounded(bytes);
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }),
      { numRuns: 600, seed: SEED, endOnFailure: true },
    );
    // The generator must reach both sides: files that decode, and files that are refused.
    expect(outcomes.get("decoded") ?? 0).toBeGreaterThan(60);
    expect(outcomes.get("refused") ?? 0).toBeGreaterThan(60);
  });

  it("JPEG: segment, marker and scan lies are refused with a 4xx or decode within budget", async () => {
    const golden = (name: string) => new Uint8Array(readFileSync(join(SHARED, "golden-jpeg", name)));
    const seeds = [jpegDeclaring(), golden("photo-progressive-q75.jpg"), golden("sharp-444-q95.jpg"), golden("gray-q85.jpg")];
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(jpegFiles(seeds), async (bytes) => {
        const o = await bounded(bytes);
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }),
      { numRuns: 500, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.get("decoded") ?? 0).toBeGreaterThan(50);
    expect(outcomes.get("refused") ?? 0).toBeGreaterThan(50);
  });

  it("WebP: RIFF, chunk and animation-frame lies are refused with a 4xx or decode within budget", async () => {
    const seeds = seedsOf(FIXTURE.webp, "webp", ["lossy", "lossy-alpha", "lossless-of-png", "animated-pillow", "animated-offset-lossy-alpha"]);
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(webpFiles(seeds), async (bytes) => {
        const o = await bounded(bytes);
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }),
      { numRuns: 400, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.get("decoded") ?? 0).toBeGreaterThan(40);
    expect(outcomes.get("refused") ?? 0).toBeGreaterThan(40);
  });

  it("GIF: block, table and LZW lies are refused with a 4xx or decode within budget", async () => {
    const names = ["pillow-interlaced-transparent", "pillow-96x64-256-colours", "local-table-offset-transparent-interlaced", "animated-pillow"];
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(gifFiles(seedsOf(FIXTURE.gif, "gif", names)), async (bytes) => {
        const o = await bounded(bytes);
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }),
      { numRuns: 600, seed: SEED, endOnFailure: true },
    );
    expect(outcomes.get("decoded") ?? 0).toBeGreaterThan(60);
    expect(outcomes.get("refused") ?? 0).toBeGreaterThan(60);
  });
});
