import { decode as decodePngPixels } from "fast-png";
import { InputError } from "../errors.ts";
import type { RgbImage } from "./types.ts";

/**
 * PNG → 8-bit RGB, with the result of Pillow 9.4's `Image.open(f).convert("RGB")` (what the golden
 * data used), except for 16-bit greyscale (see {@link decodePngToRgb}).
 *
 * fast-png does the chunk parsing, inflating and unfiltering; this module maps its samples to RGB.
 * Colour types and bit depths: PNG spec §11.2.2, table 11.1.
 */

const COLOUR_GREY = 0;
const COLOUR_RGB = 2;
const COLOUR_PALETTE = 3;
const COLOUR_GREY_ALPHA = 4;
const COLOUR_RGBA = 6;

/** Samples per pixel and allowed bit depths for each PNG colour type (PNG spec table 11.1). */
const COLOUR_TYPES: Record<number, { channels: number; depths: readonly number[] }> = {
  [COLOUR_GREY]: { channels: 1, depths: [1, 2, 4, 8, 16] },
  [COLOUR_RGB]: { channels: 3, depths: [8, 16] },
  [COLOUR_PALETTE]: { channels: 1, depths: [1, 2, 4, 8] },
  [COLOUR_GREY_ALPHA]: { channels: 2, depths: [8, 16] },
  [COLOUR_RGBA]: { channels: 4, depths: [8, 16] },
};

/**
 * Walks the chunk list (no inflating) and rejects a second IHDR: fast-png would let a later IHDR
 * override the size that was checked against the pixel limit.
 */
function assertSingleHeader(bytes: Uint8Array): void {
  let o = 8 + 4 + 4 + 13 + 4; // after the signature and the IHDR chunk (length, type, 13 data bytes, CRC)
  while (o + 8 <= bytes.length) {
    const length = ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
    const type = String.fromCharCode(bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7]);
    if (type === "IHDR") throw new Error("more than one IHDR chunk");
    if (type === "IEND") return;
    o += 12 + length;
  }
}

/**
 * Unpacks `count` sub-byte samples of one row (`depth` = 1, 2 or 4 bits, most significant first)
 * starting at byte `offset` into `out`.
 */
function unpackRow(src: Uint8Array, offset: number, depth: number, count: number, out: Uint8Array): void {
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let x = 0; x < count; x++) {
    const byte = src[offset + Math.floor(x / perByte)];
    const shift = 8 - depth * ((x % perByte) + 1);
    out[x] = (byte >> shift) & mask;
  }
}

/** 256 RGB entries: PLTE first; unused entries keep Pillow's initial grey ramp (i, i, i). */
function paletteTable(palette: readonly (readonly number[])[] | undefined): Uint8Array {
  if (!palette || palette.length === 0) throw new Error("palette image without a PLTE chunk");
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) table[3 * i] = table[3 * i + 1] = table[3 * i + 2] = i;
  for (let i = 0; i < Math.min(palette.length, 256); i++) {
    table[3 * i] = palette[i][0];
    table[3 * i + 1] = palette[i][1];
    table[3 * i + 2] = palette[i][2];
  }
  return table;
}

/**
 * Decodes a PNG whose header has already been checked (see `sniffImage`) into RGB.
 *
 * - Greyscale 1/2/4/8-bit: value scaled to 0..255 (×255, ×85, ×17, ×1) and copied to R, G, B.
 * - Palette: looked up in PLTE (tRNS alpha ignored).
 * - Grey+alpha and RGBA: alpha dropped without compositing, as Pillow's convert("RGB") does.
 * - 16-bit samples: the high byte (what Pillow does for RGB, RGBA and grey+alpha). For 16-bit
 *   greyscale Pillow 9.4 opens mode "I" and its convert("RGB") clamps to 255 (almost white);
 *   we take the high byte instead, deliberately.
 *
 * @throws Error from fast-png or for inconsistent data (the caller wraps it in an InputError);
 *   InputError `unsupported_media_type` for interlaced PNGs with fewer than 8 bits per sample.
 */
export function decodePngToRgb(bytes: Uint8Array): RgbImage {
  const depth = bytes[24];
  const colourType = bytes[25];
  const interlaced = bytes[28] === 1;
  const layout = COLOUR_TYPES[colourType];
  if (layout === undefined || !layout.depths.includes(depth)) {
    throw new Error(`invalid colour type ${colourType} with bit depth ${depth}`);
  }
  if (interlaced && depth < 8) {
    // fast-png 8's Adam7 path assumes at least one byte per pixel.
    throw new InputError(
      "unsupported_media_type",
      `interlaced PNGs with ${depth}-bit samples are not supported; re-save the image without interlacing`,
      "image",
    );
  }
  assertSingleHeader(bytes);
  const png = decodePngPixels(bytes);
  const { width, height } = png;
  const channels = layout.channels;
  if (png.channels !== channels || png.depth !== depth) {
    throw new Error(`inconsistent header (colour type ${colourType}, ${png.channels} channels, ${depth}-bit)`);
  }
  const src = png.data;
  const rowSamples = width * channels;
  const rowBytes = depth < 8 ? Math.ceil((rowSamples * depth) / 8) : rowSamples;
  if (src.length !== rowBytes * height) throw new Error(`pixel data has ${src.length} samples, expected ${rowBytes * height}`);

  const out = new Uint8Array(width * height * 3); // [height, width, 3]
  const shift = depth === 16 ? 8 : 0; // 16-bit → high byte

  if (colourType === COLOUR_PALETTE || (colourType === COLOUR_GREY && depth < 8)) {
    const table = colourType === COLOUR_PALETTE ? paletteTable(png.palette) : greyTable(depth);
    const row = new Uint8Array(width);
    for (let y = 0; y < height; y++) {
      if (depth < 8) unpackRow(src as Uint8Array, y * rowBytes, depth, width, row);
      else row.set(src.subarray(y * rowBytes, y * rowBytes + width));
      for (let x = 0, o = y * width * 3; x < width; x++, o += 3) {
        const t = 3 * row[x];
        out[o] = table[t];
        out[o + 1] = table[t + 1];
        out[o + 2] = table[t + 2];
      }
    }
    return { width, height, data: out };
  }

  const n = width * height;
  if (colourType === COLOUR_GREY || colourType === COLOUR_GREY_ALPHA) {
    for (let i = 0, s = 0, o = 0; i < n; i++, s += channels, o += 3) {
      out[o] = out[o + 1] = out[o + 2] = src[s] >>> shift;
    }
  } else if (colourType === COLOUR_RGB || colourType === COLOUR_RGBA) {
    for (let i = 0, s = 0, o = 0; i < n; i++, s += channels, o += 3) {
      out[o] = src[s] >>> shift;
      out[o + 1] = src[s + 1] >>> shift;
      out[o + 2] = src[s + 2] >>> shift;
    }
  }
  return { width, height, data: out };
}

/** Grey levels of a 1/2/4-bit sample scaled to 0..255, as RGB triples (Pillow's "L;1/2/4" unpackers). */
function greyTable(depth: number): Uint8Array {
  const levels = 1 << depth;
  const table = new Uint8Array(256 * 3);
  for (let v = 0; v < levels; v++) {
    table[3 * v] = table[3 * v + 1] = table[3 * v + 2] = (v * 255) / (levels - 1);
  }
  return table;
}
