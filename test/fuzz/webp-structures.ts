/**
 * Structure-aware WebP fuzzing: real WebPs (lossy, lossless, alpha, animated) cut into RIFF chunks (and an
 * animation's ANMF into its header and sub-chunks), then lied about — the RIFF size, a chunk's size, the VP8X
 * flags and canvas, an ANMF frame's offset and size, a dropped, repeated or foreign chunk, flipped bitstream
 * bytes, trailing data, a cut. Runtime-neutral, so the same cases run in Node and in workerd.
 */
import fc from "fast-check";
import { ascii, cat } from "./bytes.ts";

interface Chunk {
  type: string;
  data: Uint8Array;
  /** Declared payload size when it lies (else the data's length). */
  size?: number;
}

const le32 = (v: number): Uint8Array => Uint8Array.of(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24);
const type = (b: Uint8Array, o: number): string => String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);

/** The chunks of a RIFF body from offset `o` (no lies: a seed is well formed). */
function parse(b: Uint8Array, o: number): Chunk[] {
  const out: Chunk[] = [];
  while (o + 8 <= b.length) {
    const n = b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24);
    out.push({ type: type(b, o), data: b.slice(o + 8, o + 8 + n) });
    o += 8 + n + (n & 1);
  }
  return out;
}

const serialise = (chunks: readonly Chunk[]): Uint8Array =>
  cat(...chunks.map((c) => cat(ascii(c.type), le32(c.size ?? c.data.length), c.data, new Uint8Array(c.data.length & 1))));

interface File {
  chunks: Chunk[];
  /** An animation's first frame: its 16-byte ANMF header and sub-chunks (re-serialised into chunks[anmf]). */
  frame?: { header: Uint8Array; parts: Chunk[] };
  riffSize?: number;
  tail: Uint8Array;
}

type Lie = (f: File) => void;
const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);

const lies: fc.Arbitrary<Lie> = fc.oneof(
  fc.oneof(fc.nat(), fc.constantFrom(0, 4, 11, 12, 0xffffffff)).map((n) => (f: File) => void (f.riffSize = n)),
  fc.tuple(fc.nat(), fc.oneof(fc.nat({ max: 1 << 20 }), fc.constantFrom(0, 1, 0xffffffff))).map(([i, n]) => (f: File) => {
    const c = pick(f.frame && i & 1 ? f.frame.parts : f.chunks, i);
    if (c) c.size = n;
  }),
  // a VP8X byte (flags, canvas width and height)
  fc.tuple(fc.nat({ max: 9 }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => (f: File) => {
    const c = f.chunks.find((x) => x.type === "VP8X");
    if (c && at < c.data.length) (c.data = c.data.slice())[at] = v;
  }),
  // an ANMF header byte (offsets, size, duration, flags)
  fc.tuple(fc.nat({ max: 15 }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => (f: File) => {
    if (f.frame) (f.frame.header = f.frame.header.slice())[at] = v;
  }),
  // a chunk dropped, repeated, or a foreign one inserted
  fc.tuple(fc.nat(), fc.constantFrom("drop", "repeat", "foreign"), fc.constantFrom("ALPH", "VP8 ", "VP8L", "ANMF", "EXIF", "XYZW")).map(([i, what, t]) => (f: File) => {
    const list = f.frame && i & 1 ? f.frame.parts : f.chunks;
    const at = i % Math.max(1, list.length);
    if (what === "drop") list.splice(at, 1);
    else if (what === "repeat" && list[at]) list.splice(at, 0, { ...list[at] });
    else list.splice(at, 0, { type: t, data: new Uint8Array(i % 40).map((_, k) => (k * 29 + i) & 255) });
  }),
  // flipped bytes inside a bitstream
  fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, at, v]) => (f: File) => {
    const c = pick([...f.chunks, ...(f.frame?.parts ?? [])].filter((x) => x.type !== "ANMF" && x.data.length > 0), i);
    if (c) (c.data = c.data.slice())[at % c.data.length] ^= v;
  }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => (f: File) => void (f.tail = tail)),
);

function build(f: File): Uint8Array {
  const chunks = f.chunks.map((c) => (c.type === "ANMF" && f.frame ? { ...c, data: cat(f.frame.header, serialise(f.frame.parts)) } : c));
  const body = serialise(chunks);
  return cat(ascii("RIFF"), le32(f.riffSize ?? body.length + 4), ascii("WEBP"), body, f.tail);
}

/** WebP files: each seed with 0–3 structural lies and sometimes a cut. */
export function webpFiles(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(lies, { maxLength: 3 }), fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.nat(), weight: 1 })).map(([seed, chosen, cut]) => {
    const chunks = parse(seed, 12);
    const anmf = chunks.find((c) => c.type === "ANMF");
    const frame = anmf && { header: anmf.data.slice(0, 16), parts: parse(anmf.data, 16) };
    const file: File = { chunks, frame, tail: new Uint8Array(0) };
    for (const lie of chosen) lie(file);
    const bytes = build(file);
    return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
  });
}
