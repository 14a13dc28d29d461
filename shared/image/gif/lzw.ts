/**
 * GIF's variable-length LZW (GIF89a §22 and Appendix F) decoded straight into the rows of an index image,
 * interlaced rows in the four passes of Appendix E, with Pillow's verdicts (GifDecode.c): data that ends (its
 * sub-blocks end, the file ends, or an end-of-information code comes) before the frame's last pixel is a
 * truncated file; a code that is not yet in the table is a broken stream; data after the last pixel is ignored.
 * Codes grow from minCodeSize + 1 bits up to 12; a full table (4096 codes) stays as it is until a clear code
 * (the "deferred clear" encoders use).
 *
 * Work is linear in the data: every code costs one table walk of at most the string it writes, and the output
 * stops at the frame's last pixel.
 */
import { corruptGif } from "./errors.ts";
import type { GifFrame } from "./blocks.ts";

const MAX_CODES = 4096;
const MAX_BITS = 12;

/** Reads the data sub-blocks as one bit stream, least significant bit first; stops at the terminator or the end of the file. */
class SubBlockBits {
  private o: number;
  private left = 0; // bytes left in the current sub-block
  private bits = 0;
  private count = 0;
  private ended = false;

  constructor(private readonly b: Uint8Array, start: number) {
    this.o = start;
  }

  /** The next `n`-bit code, or -1 when the data ends first. */
  read(n: number): number {
    while (this.count < n) {
      if (this.left === 0) {
        if (this.ended || this.o >= this.b.length || this.b[this.o] === 0) return ((this.ended = true), -1);
        this.left = this.b[this.o++];
      }
      if (this.o >= this.b.length) return ((this.ended = true), -1); // a sub-block cut short by the end of the file
      this.bits |= this.b[this.o++] << this.count;
      this.count += 8;
      this.left--;
    }
    const code = this.bits & ((1 << n) - 1);
    this.bits >>>= n;
    this.count -= n;
    return code;
  }
}

/** Row order of a frame `height` rows tall: top to bottom, or interlaced (rows 0, 8, …; 4, 12, …; 2, 6, …; 1, 3, …). */
function rowOrder(height: number, interlaced: boolean): Int32Array {
  const rows = new Int32Array(height);
  if (!interlaced) return rows.map((_, i) => i);
  let i = 0;
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]]) for (let r = start; r < height; r += step) rows[i++] = r;
  return rows;
}

/**
 * Decodes frame 0's LZW data into `indices` (uint8[f.height, f.width], already filled outside the frame).
 *
 * @throws InputError 400 "… is truncated" or "… LZW data is broken".
 */
export function decodeLzwInto(b: Uint8Array, f: GifFrame, indices: Uint8Array): void {
  const clear = 1 << f.minCodeSize;
  const end = clear + 1;
  const prefix = new Uint16Array(MAX_CODES); // [code] → the code of the string without its last byte
  const suffix = new Uint8Array(MAX_CODES); // [code] → its last byte
  const first = new Uint8Array(MAX_CODES); // [code] → its first byte
  const lengths = new Uint16Array(MAX_CODES); // [code] → its length in bytes (≤ 4096)
  for (let c = 0; c < Math.min(clear, MAX_CODES); c++) [suffix[c], first[c], lengths[c]] = [c & 0xff, c & 0xff, 1];
  const string = new Uint8Array(MAX_CODES + 1);
  const rows = rowOrder(f.frameHeight, f.interlaced);
  const bits = new SubBlockBits(b, f.dataStart);
  const total = f.frameWidth * f.frameHeight;
  let [next, size, prev, written] = [clear + 2, f.minCodeSize + 1, -1, 0];
  let [row, col, out] = [0, 0, (f.y + rows[0]) * f.width + f.x];

  while (written < total) {
    const code = bits.read(size);
    if (code < 0 || code === end) throw corruptGif(`its image data ends after ${written} of the first frame's ${total} pixels (the file is truncated)`);
    if (code === clear) {
      [next, size, prev] = [clear + 2, f.minCodeSize + 1, -1];
      continue;
    }
    if (code > next || (code === next && (prev < 0 || next >= MAX_CODES))) {
      throw corruptGif(`its LZW data is broken (code ${code} when the table holds ${next})`);
    }
    // The string of `code`, or for code === next the string of prev plus prev's first byte (the KwKwK case).
    let length: number;
    if (code < next) {
      length = lengths[code];
      for (let c = code, i = length - 1; i >= 0; i--, c = prefix[c]) string[i] = suffix[c];
    } else {
      length = lengths[prev] + 1;
      for (let c = prev, i = length - 2; i >= 0; i--, c = prefix[c]) string[i] = suffix[c];
      string[length - 1] = first[prev];
    }
    if (prev >= 0 && next < MAX_CODES) {
      [prefix[next], suffix[next], first[next], lengths[next]] = [prev, string[0], first[prev], lengths[prev] + 1];
      next++;
      if (next === 1 << size && size < MAX_BITS) size++;
    }
    prev = code;
    for (let i = 0; i < length && written < total; i++, written++) {
      indices[out + col] = string[i];
      if (++col === f.frameWidth && ++row < f.frameHeight) [col, out] = [0, (f.y + rows[row]) * f.width + f.x];
    }
  }
}
