/**
 * Structure-aware PNG fuzzing: files built from chunks, and mutations that keep most of the structure valid
 * while one field lies (a chunk length, a CRC, an IHDR field, a zlib header, a stored block's NLEN, BFINAL, the
 * Adler-32, the split of IDAT, an inserted or misplaced chunk, a decompression bomb in IDAT or in metadata).
 * Runtime-neutral, so the same cases run in Node and in workerd.
 */
import fc from "fast-check";
import { ascii, cat, crc, storedZlib, u32be } from "./bytes.ts";

/** A chunk before serialisation; `length` and `crc` override the true values when set. */
interface Chunk {
  type: string;
  data: Uint8Array;
  length?: number;
  crc?: number;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/** Row lengths (filter byte included) of every row of every pass, computed here independently of the decoder. */
function rowLengths(w: number, h: number, colourType: number, depth: number, interlaced: boolean): number[] {
  const bits = (CHANNELS[colourType] ?? 3) * depth;
  const passes = interlaced ? ADAM7 : [[0, 0, 1, 1]];
  const rows: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const [pw, ph] = [Math.ceil((w - x0) / dx), Math.ceil((h - y0) / dy)];
    if (pw > 0) for (let y = 0; y < ph; y++) rows.push(1 + Math.ceil((pw * bits) / 8));
  }
  return rows;
}

function serialise(chunks: readonly Chunk[]): Uint8Array {
  return cat(
    SIGNATURE,
    ...chunks.map((c) => {
      const body = cat(ascii(c.type), c.data);
      return cat(u32be(c.length ?? c.data.length), body, u32be(c.crc ?? crc(body)));
    }),
  );
}

/** Chunks of a real PNG file (for mutating real seeds), without interpretation. */
export function parseChunks(png: Uint8Array): Chunk[] {
  const chunks: Chunk[] = [];
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let o = 8; o + 12 <= png.length; ) {
    const length = view.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    chunks.push({ type, data: png.slice(o + 8, o + 8 + length) });
    o += 12 + length;
  }
  return chunks;
}

const COMBOS: readonly (readonly [number, number])[] = [[0, 1], [0, 2], [0, 4], [0, 8], [0, 16], [2, 8], [2, 16], [3, 1], [3, 2], [3, 4], [3, 8], [4, 8], [4, 16], [6, 8], [6, 16]];

/** A plain, valid PNG (stored zlib blocks) from a random header and random bytes, with valid filter types mostly. */
const synthetic = fc
  .record({
    w: fc.integer({ min: 1, max: 40 }),
    h: fc.integer({ min: 1, max: 24 }),
    combo: fc.constantFrom(...COMBOS),
    interlaced: fc.boolean(),
    seed: fc.integer(),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
  })
  .map(({ w, h, combo: [colourType, depth], interlaced, seed, cuts }) => {
    const rows = rowLengths(w, h, colourType, depth, interlaced);
    const raw = new Uint8Array(rows.reduce((a, b) => a + b, 0));
    let x = seed >>> 0 || 1;
    for (let o = 0, r = 0; r < rows.length; o += rows[r++]) {
      for (let i = 0; i < rows[r]; i++) raw[o + i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
      raw[o] %= 5; // a valid filter type
    }
    const ihdr = cat(u32be(w), u32be(h), Uint8Array.of(depth, colourType, 0, 0, interlaced ? 1 : 0));
    const plte = colourType === 3 ? [{ type: "PLTE", data: raw.slice(0, 3 * Math.max(1, Math.min(256, raw.length / 3) | 0)) }] : [];
    return { chunks: [{ type: "IHDR", data: ihdr }, ...plte, { type: "IDAT", data: storedZlib(raw, { cuts }) }, { type: "IEND", data: new Uint8Array() }], raw };
  });

/** One structural lie. `bomb` is a zlib stream of many zeros (made once by the caller). */
function mutation(bomb: Uint8Array): fc.Arbitrary<(c: Chunk[], raw?: Uint8Array) => void> {
  const at = (c: Chunk[], i: number) => c[i % c.length];
  const idat = (c: Chunk[]) => c.find((k) => k.type === "IDAT");
  return fc.oneof(
    fc.tuple(fc.nat(), fc.oneof(fc.nat({ max: 70_000 }), fc.constant(0xffffffff), fc.constant(0x7fffffff))).map(([i, n]) => (c: Chunk[]) => void (at(c, i).length = n)),
    fc.nat().map((i) => (c: Chunk[]) => void (at(c, i).crc = 0xdeadbeef)),
    fc.tuple(fc.constantFrom(0, 4, 8, 9, 10, 11, 12), fc.integer({ min: 0, max: 255 })).map(([field, v]) => (c: Chunk[]) => {
      const h = c.find((k) => k.type === "IHDR");
      if (h && h.data.length === 13) (h.data = h.data.slice()), (h.data[field] = v);
    }),
    fc.array(fc.nat(), { minLength: 1, maxLength: 5 }).map((cuts) => (c: Chunk[]) => {
      const i = c.findIndex((k) => k.type === "IDAT");
      if (i < 0) return;
      const d = c[i].data;
      const points = [...new Set([0, ...cuts.map((x) => x % (d.length + 1)), d.length])].sort((a, b) => a - b);
      c.splice(i, 1, ...points.slice(1).map((p, j) => ({ type: "IDAT", data: d.subarray(points[j], p) })));
    }),
    fc
      .tuple(fc.nat(), fc.constantFrom("PLTE", "iCCP", "zTXt", "iTXt", "tEXt", "ABCD", "IHDR", "IEND", "IDAT", "iCCPbomb", "zTXtbomb"), fc.uint8Array({ maxLength: 40 }))
      .map(([i, type, junk]) => (c: Chunk[]) => {
        const isBomb = type.endsWith("bomb");
        const data = isBomb ? cat(ascii("k\0\0"), bomb) : type === "iTXt" ? cat(ascii("k\0\x01\0\0\0"), junk) : type === "iCCP" ? cat(ascii("k\0\0"), junk) : junk;
        c.splice(1 + (i % c.length), 0, { type: isBomb ? type.slice(0, 4) : type, data });
      }),
    fc.tuple(fc.constantFrom("header", "flip", "nlen", "nofinal", "adler", "cut", "junk", "bomb"), fc.nat(), fc.integer({ min: 0, max: 255 })).map(
      ([kind, n, v]) =>
        (c: Chunk[], raw?: Uint8Array) => {
          const k = idat(c);
          if (!k) return;
          const s = k.data.slice();
          if (kind === "header") s[n % 2] = v;
          else if (kind === "flip") s[2 + (n % Math.max(1, Math.min(8, s.length - 2)))] ^= 1 << (v & 7);
          else if (kind === "nlen" && raw) k.data = storedZlib(raw, { cuts: [n], nlen: new Map([[0, v]]) });
          else if (kind === "nofinal" && raw) k.data = storedZlib(raw, { cuts: [n], final: false });
          else if (kind === "adler") s[s.length - 1 - (n % 4)] ^= 1 + (v % 255);
          else if (kind === "cut") k.data = s.subarray(0, n % (s.length + 1));
          else if (kind === "junk") k.data = cat(s, Uint8Array.of(v, n & 255));
          else if (kind === "bomb") k.data = bomb;
          if (kind === "header" || kind === "flip" || kind === "adler") k.data = s;
        },
    ),
  );
}

/**
 * PNG files: synthetic ones and mutations of `seeds` (real files), each with 0–3 structural lies.
 * `bomb` is a zlib stream of a few MiB of zeros (`deflate(new Uint8Array(4 << 20))`).
 */
export function pngFiles(seeds: readonly Uint8Array[], bomb: Uint8Array): fc.Arbitrary<Uint8Array> {
  const source = fc.oneof(synthetic, fc.constantFrom(...seeds).map((s) => ({ chunks: parseChunks(s), raw: undefined })));
  return fc.tuple(source, fc.array(mutation(bomb), { maxLength: 3 }), fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.nat(), weight: 1 })).map(([{ chunks, raw }, lies, cut]) => {
    const copy = chunks.map((c) => ({ ...c }));
    for (const lie of lies) lie(copy, raw);
    const file = serialise(copy);
    return cut === null ? file : file.subarray(0, cut % (file.length + 1));
  });
}
