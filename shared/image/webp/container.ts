/**
 * The RIFF container of a WebP file (RFC 9649 §2), read as libwebp's demuxer reads it, to find what libwebp's
 * still-image decoder is given: the whole file for a still image, or for an animation the first frame's
 * bitstream (its `ANMF` chunk's ALPH + VP8, or VP8L) rewrapped as a still file, with where it sits on the canvas.
 * libwebp's still decoder refuses animations, and Pillow shows frame 0 of one as WebPAnimDecoder draws it: the
 * frame's own pixels at its offset on a transparent black canvas (the first frame is a key frame: nothing is
 * blended into it), which `convert("RGB")` turns black.
 */
import { InputError } from "../../errors.ts";

/** A WebP that cannot be decoded: 400 with `param: "image"` and the reason. */
export function corruptWebp(reason: string): InputError {
  return new InputError("invalid_request", `could not decode the WebP image: ${reason}`, "image");
}

/** What to decode: a still WebP file and where its pixels go on the canvas. */
export interface WebpFrame {
  /** A still WebP file (the input itself, or the first frame rewrapped). */
  readonly still: Uint8Array;
  readonly canvasWidth: number;
  readonly canvasHeight: number;
  /** The frame's place and size on the canvas (the whole canvas for a still image). */
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** VP8X feature flag of an animation (RFC 9649 §2.7: the `A` bit). */
const ANIMATION_FLAG = 0x02;
/** VP8X feature flag of an alpha channel (`L` bit). */
const ALPHA_FLAG = 0x10;

const u24 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
const u32 = (b: Uint8Array, o: number): number => (u24(b, o) | (b[o + 3] << 24)) >>> 0;
const fourcc = (b: Uint8Array, o: number): string => String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);

interface Chunk {
  readonly type: string;
  /** Payload offset and length within the buffer. */
  readonly start: number;
  readonly length: number;
}

/** The chunks between `start` and `end`, each padded to an even size; a chunk running past `end` is a truncation. */
function chunks(b: Uint8Array, start: number, end: number, where: string): Chunk[] {
  const out: Chunk[] = [];
  for (let o = start; o + 8 <= end; ) {
    const length = u32(b, o + 4);
    if (length > end - o - 8) throw corruptWebp(`its ${fourcc(b, o)} chunk ${where} runs past the end of the data (the file is truncated)`);
    out.push({ type: fourcc(b, o), start: o + 8, length });
    o += 8 + length + (length & 1);
  }
  return out;
}

/** One chunk's bytes (header and payload, padded). */
function rawChunk(b: Uint8Array, c: Chunk): Uint8Array {
  const out = new Uint8Array(8 + c.length + (c.length & 1));
  out.set(b.subarray(c.start - 8, c.start + c.length));
  return out;
}

/** A RIFF/WEBP file around `body`. */
function riff(body: readonly Uint8Array[]): Uint8Array {
  const size = body.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(12 + size);
  out.set([0x52, 0x49, 0x46, 0x46, (size + 4) & 0xff, ((size + 4) >> 8) & 0xff, ((size + 4) >> 16) & 0xff, (size + 4) >>> 24]);
  out.set([0x57, 0x45, 0x42, 0x50], 8);
  let o = 12;
  for (const p of body) (out.set(p, o), (o += p.length));
  return out;
}

/** A VP8X chunk declaring a `width`×`height` still image with an alpha channel. */
function vp8xWithAlpha(width: number, height: number): Uint8Array {
  const [w, h] = [width - 1, height - 1];
  return Uint8Array.of(0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0, ALPHA_FLAG, 0, 0, 0, w & 0xff, (w >> 8) & 0xff, w >> 16, h & 0xff, (h >> 8) & 0xff, h >> 16);
}

/**
 * The first frame of an animation, as libwebp's demuxer finds it: every ANMF header (RFC 9649 §2.7.1.1) must be
 * 16 bytes and its frame fit the canvas, and an ANMF holding no VP8 or VP8L bitstream is not a frame (the demuxer
 * skips it), so the first frame is the first ANMF with one; its bitstream (ALPH + VP8, or VP8L) is rewrapped.
 */
function firstFrame(b: Uint8Array, anmfs: readonly Chunk[], canvasWidth: number, canvasHeight: number): WebpFrame {
  let found: WebpFrame | undefined;
  for (const [i, anmf] of anmfs.entries()) {
    if (anmf.length < 16) throw corruptWebp(`its frame ${i} (ANMF) header is ${anmf.length} bytes, not 16`);
    const o = anmf.start;
    const [x, y, width, height] = [2 * u24(b, o), 2 * u24(b, o + 3), u24(b, o + 6) + 1, u24(b, o + 9) + 1];
    if (x + width > canvasWidth || y + height > canvasHeight) {
      throw corruptWebp(`its frame ${i} (${width}×${height} at ${x},${y}) does not fit the ${canvasWidth}×${canvasHeight} canvas`);
    }
    if (found) continue;
    const parts = chunks(b, o + 16, o + anmf.length, `inside frame ${i}`);
    const lossless = parts.find((c) => c.type === "VP8L");
    const lossy = parts.find((c) => c.type === "VP8 ");
    const alpha = parts.find((c) => c.type === "ALPH");
    let still: Uint8Array | undefined;
    if (lossless) still = riff([rawChunk(b, lossless)]);
    else if (lossy) still = riff(alpha ? [vp8xWithAlpha(width, height), rawChunk(b, alpha), rawChunk(b, lossy)] : [rawChunk(b, lossy)]);
    if (still) found = { still, canvasWidth, canvasHeight, x, y, width, height };
  }
  if (!found) throw corruptWebp("it is marked animated but none of its frames (ANMF chunks) holds a VP8 or VP8L bitstream");
  return found;
}

/**
 * Reads a WebP's container: the RIFF size must fit the data (libwebp's "not enough data"; bytes after the RIFF
 * chunk are ignored, as libwebp ignores them), and an animation gives its first frame.
 *
 * @param width the canvas width the header declares (checked against the pixel limit already); `height` likewise.
 * @throws InputError 400 for a truncated file or a malformed animation.
 */
export function readWebpFrame(b: Uint8Array, width: number, height: number): WebpFrame {
  const riffSize = u32(b, 4);
  if (riffSize < 12) throw corruptWebp(`its RIFF header declares ${riffSize} bytes`);
  if (riffSize > b.length - 8) throw corruptWebp(`its RIFF header declares ${riffSize + 8} bytes but the file has ${b.length} (the file is truncated)`);
  const whole: WebpFrame = { still: b, canvasWidth: width, canvasHeight: height, x: 0, y: 0, width, height };
  if (fourcc(b, 12) !== "VP8X" || (b[20] & ANIMATION_FLAG) === 0) return whole;
  return firstFrame(b, chunks(b, 12, 8 + riffSize, "").filter((c) => c.type === "ANMF"), width, height);
}
