import { InputError } from "../errors.ts";
import type { ImageFormat, ImageHeader } from "./types.ts";

/**
 * Reading the format and declared size from an image header, without decoding any pixels, so
 * that size limits can be enforced before a decoder allocates anything.
 *
 * Header layouts: PNG IHDR (PNG spec §11.2.2); JPEG SOFn (ITU T.81 §B.2.2); WebP RIFF "VP8 " /
 * "VP8L" / "VP8X" (RFC 9649 §2.5–2.7); GIF logical screen descriptor (GIF89a §18); BMP
 * BITMAPCOREHEADER / BITMAPINFOHEADER.
 */

const SIGNATURES: readonly { format: ImageFormat; bytes: readonly (number | null)[] }[] = [
  { format: "png", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { format: "jpeg", bytes: [0xff, 0xd8, 0xff] },
  // "RIFF" ???? "WEBP" (null = any byte: the RIFF size)
  { format: "webp", bytes: [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50] },
  { format: "gif", bytes: [0x47, 0x49, 0x46, 0x38] }, // "GIF8" (then "7a" or "9a")
  { format: "bmp", bytes: [0x42, 0x4d] }, // "BM"
];

/** Display names for messages. */
export const FORMAT_NAMES: Readonly<Record<ImageFormat, string>> = {
  png: "PNG",
  jpeg: "JPEG",
  webp: "WebP",
  gif: "GIF",
  bmp: "BMP",
};

/** Thrown for a recognised format whose header is cut short or inconsistent. */
function corrupt(format: ImageFormat, detail: string): InputError {
  return new InputError(
    "invalid_request",
    `image is truncated or corrupt: ${FORMAT_NAMES[format]} header ${detail}`,
    "image",
  );
}

/** Signature match: "full" on a complete match, "prefix" when the input ends inside the signature. */
function matchSignature(bytes: Uint8Array, sig: readonly (number | null)[]): "full" | "prefix" | "no" {
  const n = Math.min(bytes.length, sig.length);
  for (let i = 0; i < n; i++) {
    if (sig[i] !== null && bytes[i] !== sig[i]) return "no";
  }
  return n === sig.length ? "full" : "prefix";
}

const u16be = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const u16le = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
const u24le = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
const u32be = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const i32le = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
const u32le = (b: Uint8Array, o: number): number => i32le(b, o) >>> 0;

function need(bytes: Uint8Array, n: number, format: ImageFormat): void {
  if (bytes.length < n) throw corrupt(format, `is cut short (${bytes.length} of at least ${n} bytes)`);
}

function pngSize(b: Uint8Array): [number, number] {
  need(b, 24, "png");
  // bytes 8..15: first chunk's length (13) and type, which must be "IHDR"
  if (u32be(b, 8) !== 13 || b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) {
    throw corrupt("png", "does not start with an IHDR chunk");
  }
  return [u32be(b, 16), u32be(b, 20)];
}

/** Walks the JPEG marker segments up to the first start-of-frame (SOF0–SOF15 except DHT, JPG, DAC). */
function jpegSize(b: Uint8Array): [number, number] {
  let o = 2; // after SOI
  for (;;) {
    while (o < b.length && b[o] !== 0xff) o++; // tolerate stray bytes between segments, as libjpeg does
    while (o < b.length && b[o] === 0xff) o++; // fill bytes
    if (o >= b.length) throw corrupt("jpeg", "ends before the frame header (SOF)");
    const marker = b[o++];
    // Markers without a length field: TEM, RSTn, SOI, and 0x00 (a stuffed byte).
    if (marker === 0x00 || marker === 0x01 || marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || marker === 0xda) throw corrupt("jpeg", "has no frame header (SOF) before the image data");
    need(b, o + 2, "jpeg");
    const length = u16be(b, o);
    if (length < 2) throw corrupt("jpeg", `has a segment of invalid length ${length}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      need(b, o + 7, "jpeg");
      // length(2) precision(1) height(2) width(2)
      return [u16be(b, o + 5), u16be(b, o + 3)];
    }
    o += length;
  }
}

function webpSize(b: Uint8Array): [number, number] {
  need(b, 16, "webp");
  const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
  need(b, chunk === "VP8L" ? 25 : 30, "webp");
  if (chunk === "VP8 ") {
    // 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw corrupt("webp", "has a bad VP8 start code");
    return [u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff];
  }
  if (chunk === "VP8L") {
    if (b[20] !== 0x2f) throw corrupt("webp", "has a bad VP8L signature");
    const bits = u24le(b, 21) | (b[24] << 24);
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
  }
  if (chunk === "VP8X") return [u24le(b, 24) + 1, u24le(b, 27) + 1];
  throw corrupt("webp", `has an unknown first chunk "${chunk}"`);
}

function bmpSize(b: Uint8Array): [number, number] {
  need(b, 18, "bmp");
  if (u32le(b, 14) === 12) {
    // BITMAPCOREHEADER: 16-bit width and height
    need(b, 22, "bmp");
    return [u16le(b, 18), u16le(b, 20)];
  }
  need(b, 26, "bmp");
  return [Math.abs(i32le(b, 18)), Math.abs(i32le(b, 22))]; // negative height = top-down rows
}

function gifSize(b: Uint8Array): [number, number] {
  need(b, 10, "gif");
  return [u16le(b, 6), u16le(b, 8)]; // logical screen width, height
}

const HEADER_READERS: Record<ImageFormat, (b: Uint8Array) => [number, number]> = {
  png: pngSize,
  jpeg: jpegSize,
  webp: webpSize,
  gif: gifSize,
  bmp: bmpSize,
};

/**
 * Identifies an image by its signature and reads its declared size from the header only.
 *
 * @param bytes the whole file (only the first bytes are read; for JPEG, the segments before SOF).
 * @returns the format and the declared width and height (both ≥ 1).
 * @throws InputError `unsupported_media_type` (415) when `bytes` is empty or has no known signature;
 *   `invalid_request` (400) "image is truncated or corrupt: ..." when a known format's header is
 *   cut short, malformed, or declares a zero width or height. All errors carry `param: "image"`.
 */
export function sniffImage(bytes: Uint8Array): ImageHeader {
  if (bytes.length === 0) throw new InputError("unsupported_media_type", "image is empty (0 bytes)", "image");
  let format: ImageFormat | undefined;
  for (const sig of SIGNATURES) {
    const match = matchSignature(bytes, sig.bytes);
    if (match === "full") {
      format = sig.format;
      break;
    }
    if (match === "prefix" && bytes.length >= 2) throw corrupt(sig.format, `is cut short (${bytes.length} bytes)`);
  }
  if (format === undefined) {
    throw new InputError(
      "unsupported_media_type",
      "not a PNG, JPEG, WebP or GIF image (unrecognised file signature)",
      "image",
    );
  }
  const [width, height] = HEADER_READERS[format](bytes);
  if (width === 0 || height === 0) throw corrupt(format, `declares an empty ${width}×${height} image`);
  return { format, width, height };
}
