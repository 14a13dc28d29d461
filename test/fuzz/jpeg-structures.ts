/**
 * Structure-aware JPEG fuzzing: real JPEGs cut into marker segments and scans, then lied about — a segment's
 * length, an inserted DRI / DNL / APPn / COM / RSTn / TEM / reserved marker, fill bytes, a repeated or moved
 * scan, a second SOI or SOF, frame and scan header fields, markers and flipped bytes inside entropy-coded
 * data, a cut. Runtime-neutral, so the same cases run in Node and in workerd.
 */
import fc from "fast-check";
import { cat, u16be } from "./bytes.ts";

/** A marker and what follows it up to the next marker: a segment's payload (length field included), and a scan's data. */
interface Piece {
  marker: number;
  body: Uint8Array;
}

const isRst = (m: number) => m >= 0xd0 && m <= 0xd7;
const standalone = (m: number) => m === 0xd8 || m === 0xd9 || m === 0x01 || isRst(m);

/** Splits a JPEG at its markers (a scan's piece holds its header and all its entropy-coded data, restarts included). */
export function parsePieces(b: Uint8Array): Piece[] {
  const pieces: Piece[] = [];
  let o = 0;
  while (o + 1 < b.length) {
    if (b[o] !== 0xff || b[o + 1] === 0x00 || b[o + 1] === 0xff) {
      o++;
      continue;
    }
    const marker = b[o + 1];
    let end = o + 2;
    if (!standalone(marker)) end += (b[end] << 8) | b[end + 1];
    if (marker === 0xda) {
      while (end + 1 < b.length && !(b[end] === 0xff && b[end + 1] !== 0 && !isRst(b[end + 1]))) end++;
    }
    pieces.push({ marker, body: b.slice(o + 2, Math.min(end, b.length)) });
    o = end;
  }
  return pieces;
}

const serialise = (pieces: readonly Piece[]) => cat(...pieces.map((p) => cat(Uint8Array.of(0xff, p.marker), p.body)));

type Lie = (p: Piece[]) => void;

const index = (p: Piece[], marker: number) => p.findIndex((x) => x.marker === marker);

const lies: fc.Arbitrary<Lie> = fc.oneof(
  // a segment's declared length
  fc.tuple(fc.nat(), fc.oneof(fc.nat({ max: 0xffff }), fc.constantFrom(0, 1, 2, 0xffff))).map(([i, n]) => (p: Piece[]) => {
    const x = p[i % p.length];
    if (!standalone(x.marker) && x.body.length >= 2) (x.body = x.body.slice()), x.body.set(u16be(n));
  }),
  // an inserted segment or standalone marker
  fc
    .tuple(fc.nat(), fc.constantFrom(0xdd, 0xdc, 0xe1, 0xfe, 0xd3, 0x01, 0x05, 0xbf, 0xc3, 0xc8, 0xd8, 0xd9, 0xc0), fc.oneof(fc.constant(4), fc.nat({ max: 600 })), fc.uint8Array({ maxLength: 64 }))
    .map(([i, marker, length, junk]) => (p: Piece[]) => {
      const payload = new Uint8Array(Math.max(0, length - 2)).map((_, k) => junk[k % Math.max(1, junk.length)] ?? 0);
      const body = standalone(marker) ? new Uint8Array() : cat(u16be(length), payload);
      p.splice(1 + (i % p.length), 0, { marker, body });
    }),
  // a DRI that declares many bytes and hides copies of the scan inside them
  fc.integer({ min: 1, max: 400 }).map((copies) => (p: Piece[]) => {
    const s = index(p, 0xda);
    if (s < 0) return;
    const scan = serialise([p[s]]);
    const hidden = cat(...Array.from({ length: copies }, () => scan)).subarray(0, 0xffff - 4);
    p.splice(s, 0, { marker: 0xdd, body: cat(u16be(hidden.length + 4), Uint8Array.of(0, 0), hidden) });
  }),
  // fill bytes before a marker
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 50 })).map(([i, n]) => (p: Piece[]) => {
    const x = p[i % p.length];
    x.body = cat(x.body, new Uint8Array(n).fill(0xff));
  }),
  // the scan repeated (a CPU bomb when progressive), or moved before the tables
  fc.integer({ min: 1, max: 160 }).map((k) => (p: Piece[]) => {
    const s = index(p, 0xda);
    if (s >= 0) p.splice(s, 0, ...Array.from({ length: k }, () => ({ ...p[s] })));
  }),
  fc.nat().map((i) => (p: Piece[]) => {
    const s = index(p, 0xda);
    if (s > 1) p.splice(1 + (i % (s - 1)), 0, ...p.splice(s, 1));
  }),
  // a frame header field (precision, height, width, count, sampling factors, table) or a scan header field
  fc.tuple(fc.nat({ max: 14 }), fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([field, v, sof]) => (p: Piece[]) => {
    const i = sof ? p.findIndex((x) => x.marker >= 0xc0 && x.marker <= 0xc2) : index(p, 0xda);
    if (i < 0) return;
    const body = p[i].body.slice();
    if (2 + field < body.length) body[2 + field] = v;
    p[i].body = body;
  }),
  // entropy-coded data: flipped bytes, or a marker inside it
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([at, v, marker]) => (p: Piece[]) => {
    const s = index(p, 0xda);
    if (s < 0 || p[s].body.length < 12) return;
    const body = p[s].body;
    const o = 10 + (at % (body.length - 10));
    p[s].body = marker ? cat(body.subarray(0, o), Uint8Array.of(0xff, v), body.subarray(o)) : body.slice();
    if (!marker) p[s].body[o] ^= v;
  }),
);

/** JPEG files: each seed with 0–3 structural lies and sometimes a cut. */
export function jpegFiles(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(lies, { maxLength: 3 }), fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.nat(), weight: 1 })).map(([seed, chosen, cut]) => {
    const pieces = parsePieces(seed).map((x) => ({ ...x }));
    for (const lie of chosen) lie(pieces);
    const file = serialise(pieces);
    return cut === null ? file : file.subarray(0, cut % (file.length + 1));
  });
}
