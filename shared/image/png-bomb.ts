/**
 * A guard against PNG decompression bombs, run before the PNG is decoded.
 *
 * fast-png inflates every IDAT chunk (and an iCCP profile) with no limit on the output, so a PNG of a few
 * hundred kilobytes that declares a small image can inflate to gigabytes and take a 128 MB isolate down. A
 * valid PNG's image data inflates to exactly the size its header implies (PNG spec §7.3 and §8.2: every row is
 * one filter-type byte plus ceil(width × channels × depth / 8) bytes, for each Adam7 pass when interlaced), so
 * the guard inflates the compressed streams through a `DecompressionStream` (workerd and Node 20 both have
 * it), counting the output and stopping as soon as it passes that size. Memory stays at one output chunk.
 */
import { InputError } from "../errors.ts";

/** Samples per pixel by PNG colour type (PNG spec table 11.1). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Adam7 passes: [x0, y0, dx, dy] (PNG spec §8.2). */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Room for encoders that pad the stream; a bomb is off by orders of magnitude, not by this. */
const SLACK_BYTES = 64 * 1024;

/** Largest embedded ICC profile accepted (real profiles are a few kilobytes, rarely a megabyte). */
export const MAX_ICC_PROFILE_BYTES = 4 * 1024 * 1024;

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Bytes of inflated image data a PNG with this header must have (filter bytes included). */
export function pngRawSize(width: number, height: number, colourType: number, depth: number, interlaced: boolean): number {
  const bitsPerPixel = (CHANNELS[colourType] ?? 4) * depth;
  const rows = (w: number, h: number): number => (w === 0 || h === 0 ? 0 : h * (1 + Math.ceil((w * bitsPerPixel) / 8)));
  if (!interlaced) return rows(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return total;
}

/** The compressed streams of a PNG: the IDAT data in order, and each iCCP profile. */
function compressedStreams(bytes: Uint8Array): { idat: Uint8Array[]; icc: Uint8Array[] } {
  const idat: Uint8Array[] = [];
  const icc: Uint8Array[] = [];
  let o = 8;
  while (o + 8 <= bytes.length) {
    const length = u32(bytes, o);
    const type = String.fromCharCode(bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7]);
    const start = o + 8;
    const end = Math.min(bytes.length, start + length);
    if (type === "IDAT") idat.push(bytes.subarray(start, end));
    else if (type === "iCCP") {
      const nul = bytes.subarray(start, end).indexOf(0); // keyword, NUL, compression method, zlib data
      if (nul >= 0) icc.push(bytes.subarray(start + nul + 2, end));
    } else if (type === "IEND") break;
    o = start + length + 4;
  }
  return { idat, icc };
}

/**
 * Inflates `parts` (one zlib stream) and reports whether the output stays within `limit` bytes. Corrupt data
 * counts as within: the decoder that runs next reports it with its own message.
 */
async function inflatesWithin(parts: readonly Uint8Array[], limit: number): Promise<boolean> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const writing = (async () => {
    for (const part of parts) await writer.write(part as Uint8Array<ArrayBuffer>);
    await writer.close();
  })().catch(() => undefined);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return true;
      total += value.byteLength;
      if (total > limit) return false;
    }
  } catch {
    return true;
  } finally {
    await reader.cancel().catch(() => undefined);
    await writer.abort().catch(() => undefined);
    await writing;
  }
}

/**
 * Refuses a PNG whose image data inflates past the size its header implies, or whose ICC profile inflates past
 * {@link MAX_ICC_PROFILE_BYTES}. Call it after `sniffImage` accepted the header and before decoding.
 *
 * @throws InputError 400 (`param: "image"`) for such a file.
 */
export async function assertNoPngBomb(bytes: Uint8Array): Promise<void> {
  if (bytes.length < 33) return; // too short to hold IHDR: the decoder reports it
  const [width, height, depth, colourType, interlace] = [u32(bytes, 16), u32(bytes, 20), bytes[24], bytes[25], bytes[28]];
  const expected = pngRawSize(width, height, colourType, depth, interlace === 1);
  const { idat, icc } = compressedStreams(bytes);
  if (!(await inflatesWithin(idat, expected + SLACK_BYTES))) {
    throw new InputError(
      "invalid_request",
      `image is corrupt: its PNG data inflates to more than the ${expected} bytes a ${width}×${height} image holds (a decompression bomb?)`,
      "image",
    );
  }
  for (const profile of icc) {
    if (!(await inflatesWithin([profile], MAX_ICC_PROFILE_BYTES))) {
      throw new InputError("invalid_request", `image is corrupt: its ICC profile inflates to more than ${MAX_ICC_PROFILE_BYTES} bytes`, "image");
    }
  }
}
