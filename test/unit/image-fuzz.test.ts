import { readFileSync } from "node:fs";
import fc from "fast-check";
import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { decodeImage } from "../../shared/image/index.ts";
import { rgbaJpeg } from "../fixtures/images/helpers.ts";

/**
 * Property: for any bytes, decodeImage returns a well-formed RgbImage or throws an InputError;
 * never another exception (a decoder's TypeError, RangeError, ... must not reach the HTTP edge).
 */

const LIMITS = { maxPixels: 1 << 16 };
const SEED_PNG = encodePng({
  width: 9,
  height: 6,
  channels: 4,
  depth: 8,
  data: new Uint8Array(9 * 6 * 4).map((_, i) => (i * 53) & 255),
});
const SEED_PALETTE_PNG = encodePng({
  width: 5,
  height: 3,
  channels: 1,
  depth: 4,
  palette: [[0, 0, 0], [255, 255, 255], [9, 99, 199]],
  data: new Uint8Array([0x01, 0x20, 0x12, 0x01, 0x20, 0x12, 0x01, 0x20, 0x12]),
});
const SEED_JPEG = rgbaJpeg(24, 16, [120, 60, 240]);
const FIXTURE = JSON.parse(readFileSync(new URL("../fixtures/images/pillow-webp-gif.json", import.meta.url), "utf8")) as {
  webp: { name: string; webp: string }[];
  gif: { name: string; gif: string }[];
};
const fixture = (name: string): Uint8Array => {
  const c = [...FIXTURE.webp, ...FIXTURE.gif].find((x) => x.name === name) as Record<string, string>;
  return new Uint8Array(Buffer.from(c.webp ?? c.gif, "base64"));
};
const SEED_WEBP_LOSSY = fixture("lossy-alpha");
const SEED_WEBP_ANIMATED = fixture("animated-offset-lossless");
const SEED_GIF = fixture("local-table-offset-transparent-interlaced");

async function checkDecode(bytes: Uint8Array): Promise<void> {
  try {
    const img = await decodeImage(bytes, LIMITS);
    expect(img.width * img.height).toBeLessThanOrEqual(LIMITS.maxPixels);
    expect(img.data).toBeInstanceOf(Uint8Array);
    expect(img.data.length).toBe(img.width * img.height * 3);
  } catch (err) {
    if (!(err instanceof InputError)) throw new Error(`not an InputError: ${String(err)}`, { cause: err });
  }
}

/** Byte-level edits of a valid file: overwrite, insert, delete a range, truncate. */
type Edit =
  | { kind: "set"; at: number; value: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "truncate"; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

function applyEdits(seed: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let bytes = Array.from(seed);
  for (const e of edits) {
    const at = bytes.length === 0 ? 0 : e.at % bytes.length;
    if (e.kind === "set" && bytes.length > 0) bytes[at] = e.value;
    else if (e.kind === "insert") bytes.splice(at, 0, ...e.bytes);
    else if (e.kind === "delete") bytes.splice(at, e.length);
    else if (e.kind === "truncate") bytes = bytes.slice(0, at);
  }
  return Uint8Array.from(bytes);
}

describe("decodeImage never throws anything but InputError", () => {
  it.each([
    ["RGBA PNG", SEED_PNG],
    ["4-bit palette PNG", SEED_PALETTE_PNG],
    ["JPEG", SEED_JPEG],
    ["lossy WebP with alpha", SEED_WEBP_LOSSY],
    ["animated lossless WebP", SEED_WEBP_ANIMATED],
    ["interlaced GIF with a local table", SEED_GIF],
  ])("mutated %s", async (_, seed) => {
    await checkDecode(seed); // the seed itself is valid
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => checkDecode(applyEdits(seed, edits))),
      { numRuns: 400, seed: 20240611 },
    );
  });

  it("random bytes, bare or behind a PNG/JPEG/WebP/GIF signature", async () => {
    const prefixes = [new Uint8Array(0), SEED_PNG.subarray(0, 8), SEED_PNG.subarray(0, 33), SEED_JPEG.subarray(0, 3), SEED_WEBP_ANIMATED.subarray(0, 30), SEED_GIF.subarray(0, 13)];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 256 }), (prefix, tail) =>
        checkDecode(new Uint8Array([...prefix, ...tail])),
      ),
      { numRuns: 400, seed: 7 },
    );
  });
});
