/**
 * From inflated PNG image data to 8-bit RGB, row by row: each row's filter is undone against the previous
 * row (PNG spec §9: None, Sub, Up, Average, Paeth), its samples are mapped to RGB as Pillow's
 * `Image.open(f).convert("RGB")` maps them, and its pixels are written where they belong (Adam7 passes,
 * §8.2, place every pass's pixels on a lattice). Only two rows are held besides the output, so memory is the
 * RGB image plus a few kilobytes, whatever the file.
 */
import type { RgbImage } from "../types.ts";
import type { PngHeader } from "./chunks.ts";
import { corruptPng } from "./errors.ts";

/** Samples per pixel and allowed bit depths per colour type (PNG spec table 11.1). */
const LAYOUTS: Record<number, { channels: number; depths: readonly number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] }, // grey
  2: { channels: 3, depths: [8, 16] }, // RGB
  3: { channels: 1, depths: [1, 2, 4, 8] }, // palette
  4: { channels: 2, depths: [8, 16] }, // grey + alpha
  6: { channels: 4, depths: [8, 16] }, // RGBA
};
const PALETTE = 3;

/** Passes as [x0, y0, dx, dy]: the whole image, or Adam7's seven (PNG spec §8.2). */
const PROGRESSIVE = [[0, 0, 1, 1]] as const;
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Pass {
  readonly x0: number;
  readonly y0: number;
  readonly dx: number;
  readonly dy: number;
  readonly width: number;
  readonly height: number;
  /** Bytes per row after the filter-type byte. */
  readonly rowBytes: number;
}

/** Bytes of inflated image data a PNG with this header holds (filter bytes included). */
export function pngDataBytes(header: PngHeader): number {
  return passesOf(header).reduce((sum, p) => sum + p.height * (1 + p.rowBytes), 0);
}

function passesOf(h: PngHeader): Pass[] {
  const bits = LAYOUTS[h.colourType].channels * h.depth;
  return (h.interlaced ? ADAM7 : PROGRESSIVE)
    .map(([x0, y0, dx, dy]) => {
      const width = Math.ceil((h.width - x0) / dx);
      const height = Math.ceil((h.height - y0) / dy);
      return { x0, y0, dx, dy, width, height, rowBytes: Math.ceil((width * bits) / 8) };
    })
    .filter((p) => p.width > 0 && p.height > 0);
}

/**
 * RGB for each of the 256 possible sample values of a palette or sub-byte grey image: PLTE entries (entries
 * past PLTE keep Pillow's initial grey ramp i, i, i; tRNS is ignored), or grey levels scaled to 0..255.
 */
function lookupTable(h: PngHeader, palette: Uint8Array | undefined): Uint8Array {
  const table = new Uint8Array(256 * 3);
  const levels = 1 << h.depth;
  for (let i = 0; i < 256; i++) {
    const v = h.colourType === PALETTE ? i : i < levels ? (i * 255) / (levels - 1) : 0;
    table[3 * i] = table[3 * i + 1] = table[3 * i + 2] = v;
  }
  if (h.colourType === PALETTE) {
    if (!palette) throw corruptPng("it is a palette image without a PLTE chunk");
    table.set(palette);
  }
  return table;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes one row's filter in place (`row[0]` is the filter type; `prev` is the unfiltered row above, or 0s). */
function unfilter(row: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = row.length;
  switch (row[0]) {
    case 0:
      return;
    case 1:
      for (let i = 1 + bpp; i < n; i++) row[i] = row[i] + row[i - bpp];
      return;
    case 2:
      for (let i = 1; i < n; i++) row[i] = row[i] + prev[i];
      return;
    case 3:
      for (let i = 1; i < n; i++) row[i] = row[i] + ((prev[i] + (i > bpp ? row[i - bpp] : 0)) >> 1);
      return;
    case 4:
      for (let i = 1; i < n; i++) row[i] = row[i] + (i > bpp ? paeth(row[i - bpp], prev[i], prev[i - bpp]) : prev[i]);
      return;
    default:
      throw corruptPng(`a row has filter type ${row[0]} (only 0–4 exist)`);
  }
}

/**
 * Consumes inflated image data in pieces of any size and builds the RGB image. `push` returns true once every
 * row is decoded; bytes after that are ignored (Pillow stops there too).
 */
export class PngRowDecoder {
  private readonly passes: Pass[];
  private readonly out: Uint8Array; // [height, width, 3]
  private readonly table: Uint8Array;
  private readonly channels: number;
  private readonly bpp: number;
  private pass = 0;
  private y = 0;
  private filled = 0;
  private row: Uint8Array;
  private prev: Uint8Array;

  constructor(
    private readonly header: PngHeader,
    palette: Uint8Array | undefined,
  ) {
    const layout = LAYOUTS[header.colourType];
    if (!layout || !layout.depths.includes(header.depth)) {
      throw corruptPng(`it has colour type ${header.colourType} with bit depth ${header.depth}, which PNG does not define`);
    }
    this.channels = layout.channels;
    this.bpp = Math.max(1, (layout.channels * header.depth) >> 3);
    this.passes = passesOf(header);
    this.table = lookupTable(header, palette);
    this.out = new Uint8Array(header.width * header.height * 3);
    this.row = new Uint8Array(1 + this.passes[0].rowBytes);
    this.prev = new Uint8Array(this.row.length);
  }

  /** Whether every row has been decoded. */
  get complete(): boolean {
    return this.pass === this.passes.length;
  }

  /** The decoded image (only once {@link complete}). */
  image(): RgbImage {
    if (!this.complete) throw new Error("PNG rows are not all decoded yet");
    return { width: this.header.width, height: this.header.height, data: this.out };
  }

  /** Takes the next inflated bytes; returns true once the image is complete. */
  push(bytes: Uint8Array): boolean {
    let o = 0;
    while (o < bytes.length && !this.complete) {
      const take = Math.min(this.row.length - this.filled, bytes.length - o);
      this.row.set(bytes.subarray(o, o + take), this.filled);
      this.filled += take;
      o += take;
      if (this.filled === this.row.length) this.finishRow();
    }
    return this.complete;
  }

  private finishRow(): void {
    const p = this.passes[this.pass];
    unfilter(this.row, this.prev, this.bpp);
    this.emit(p, this.row, (p.y0 + this.y * p.dy) * this.header.width + p.x0);
    [this.row, this.prev] = [this.prev, this.row];
    this.filled = 0;
    if (++this.y < p.height) return;
    this.y = 0;
    if (++this.pass < this.passes.length) {
      this.row = new Uint8Array(1 + this.passes[this.pass].rowBytes);
      this.prev = new Uint8Array(this.row.length);
    }
  }

  /** Writes one unfiltered row's pixels as RGB, starting at pixel index `at`, every `p.dx` pixels. */
  private emit(p: Pass, row: Uint8Array, at: number): void {
    const { depth, colourType } = this.header;
    const out = this.out;
    const step = 3 * p.dx;
    let o = 3 * at;
    if (depth < 8 || colourType === PALETTE) {
      const perByte = 8 / depth;
      const mask = (1 << depth) - 1;
      const t = this.table;
      for (let x = 0; x < p.width; x++, o += step) {
        const v = depth === 8 ? row[1 + x] : (row[1 + Math.floor(x / perByte)] >> (8 - depth * ((x % perByte) + 1))) & mask;
        out[o] = t[3 * v];
        out[o + 1] = t[3 * v + 1];
        out[o + 2] = t[3 * v + 2];
      }
      return;
    }
    // 8- or 16-bit samples: the (high) byte of each sample, alpha dropped without compositing.
    const sampleBytes = depth >> 3;
    const stride = this.channels * sampleBytes;
    const colour = this.channels >= 3;
    for (let x = 0, s = 1; x < p.width; x++, s += stride, o += step) {
      out[o] = row[s];
      out[o + 1] = colour ? row[s + sampleBytes] : row[s];
      out[o + 2] = colour ? row[s + 2 * sampleBytes] : row[s];
    }
  }
}
