/**
 * Structure-aware GIF fuzzing: real GIFs cut into their blocks (screen descriptor and global table, extensions,
 * image descriptors with local tables and LZW sub-blocks, trailer), then lied about — the screen and frame
 * sizes and offsets, the table flags and sizes, the LZW code size, a graphic control extension's size and
 * transparency, a sub-block's size, flipped LZW bytes, an early terminator, stray bytes or an extension with
 * lying sub-blocks inserted, blocks dropped or repeated, trailing data, a cut. Runtime-neutral (Node and workerd).
 */
import fc from "fast-check";
import { cat } from "./bytes.ts";

interface Block {
  /** The block's bytes: introducer, fixed fields, tables, sub-blocks. */
  bytes: Uint8Array;
  kind: "header" | "extension" | "image" | "trailer" | "other";
}

/** Offset past the sub-blocks at `o`. */
function subBlocksEnd(b: Uint8Array, o: number): number {
  while (o < b.length && b[o] !== 0) o += 1 + b[o];
  return Math.min(o + 1, b.length);
}

/** Splits a (well-formed) GIF into blocks. */
function parse(b: Uint8Array): Block[] {
  let o = 13 + (b[10] & 0x80 ? 3 << ((b[10] & 7) + 1) : 0);
  const blocks: Block[] = [{ kind: "header", bytes: b.slice(0, o) }];
  while (o < b.length) {
    const start = o;
    if (b[o] === 0x21) o = subBlocksEnd(b, o + 2);
    else if (b[o] === 0x2c) o = subBlocksEnd(b, o + 10 + (b[o + 9] & 0x80 ? 3 << ((b[o + 9] & 7) + 1) : 0) + 1);
    else o++;
    const kind = b[start] === 0x21 ? "extension" : b[start] === 0x2c ? "image" : b[start] === 0x3b ? "trailer" : "other";
    blocks.push({ kind, bytes: b.slice(start, o) });
  }
  return blocks;
}

type Lie = (blocks: Block[]) => void;
const find = (bs: Block[], kind: Block["kind"], i: number): Block | undefined => {
  const all = bs.filter((b) => b.kind === kind);
  return all.length ? all[i % all.length] : undefined;
};
const setByte = (b: Block | undefined, at: number, v: number): void => {
  if (b && at < b.bytes.length) (b.bytes = b.bytes.slice())[at] = v;
};

const lies: fc.Arbitrary<Lie> = fc.oneof(
  // screen width/height, packed fields (table flag and size), background
  fc.tuple(fc.integer({ min: 6, max: 11 }), fc.integer({ min: 0, max: 255 })).map(([at, v]) => (bs: Block[]) => setByte(bs[0], at, v)),
  // an image descriptor field (offsets, size, packed fields) or its LZW code size
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([i, at, v, codeSize]) => (bs: Block[]) => {
    const img = find(bs, "image", i);
    if (!img) return;
    const tableEnd = 10 + (img.bytes[9] & 0x80 ? 3 << ((img.bytes[9] & 7) + 1) : 0);
    setByte(img, codeSize ? tableEnd : at, codeSize ? v % 14 : v);
  }),
  // flipped LZW bytes, a sub-block size, an early terminator
  fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("flip", "size", "end")).map(([i, at, v, what]) => (bs: Block[]) => {
    const img = find(bs, "image", i);
    if (!img || img.bytes.length < 14) return;
    const o = 12 + (at % (img.bytes.length - 12));
    if (what === "end") img.bytes = cat(img.bytes.subarray(0, o), Uint8Array.of(0));
    else setByte(img, o, what === "flip" ? img.bytes[o] ^ (v | 1) : v);
  }),
  // a graphic control extension: its size, flags and transparent index
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([i, size, flags, index]) => (bs: Block[]) => {
    const body = new Uint8Array(size).map((_, k) => (k === 0 ? flags : k === 3 ? index : k));
    bs.splice(1 + (i % bs.length), 0, { kind: "extension", bytes: cat(Uint8Array.of(0x21, 0xf9, size), body, Uint8Array.of(0)) });
  }),
  // an extension with sub-blocks that may run past the end, or stray bytes
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })).map(([i, label, junk]) => (bs: Block[]) => {
    bs.splice(1 + (i % bs.length), 0, { kind: "extension", bytes: cat(Uint8Array.of(0x21, label), junk) });
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, junk]) => (bs: Block[]) => void bs.splice(1 + (i % bs.length), 0, { kind: "other", bytes: junk })),
  // a block dropped or repeated; trailing data
  fc.tuple(fc.nat(), fc.boolean()).map(([i, drop]) => (bs: Block[]) => {
    const at = 1 + (i % Math.max(1, bs.length - 1));
    if (at >= bs.length) return;
    if (drop) bs.splice(at, 1);
    else bs.splice(at, 0, { ...bs[at] });
  }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => (bs: Block[]) => void bs.push({ kind: "other", bytes: tail })),
);

/** GIF files: each seed with 0–3 structural lies and sometimes a cut. */
export function gifFiles(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(lies, { maxLength: 3 }), fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.nat(), weight: 1 })).map(([seed, chosen, cut]) => {
    const blocks = parse(seed);
    for (const lie of chosen) lie(blocks);
    const file = cat(...blocks.map((b) => b.bytes));
    return cut === null ? file : file.subarray(0, cut % (file.length + 1));
  });
}
