/**
 * The marker layer of a JPEG, walked as libjpeg-turbo's marker reader walks it (jdmarker.c: `next_marker`,
 * `read_markers`, `get_sos`, `get_dri`, `skip_variable`), so that what is counted here is what the decoder
 * will decode: every segment is skipped by its declared length (libjpeg does the same), a DRI must be
 * exactly 4 bytes long (libjpeg stops with "Bogus marker length" otherwise), an SOS header's length must
 * equal 6 + 2·Ns, and entropy-coded data runs to the first marker that is not a stuffed 0xFF00 or a restart
 * marker (ITU T.81 §B.1.1.5). Where libjpeg would stop with an error, or could resynchronise past a marker
 * in a way a reader cannot predict (a reserved marker code inside a scan), the file is refused here.
 *
 * The result sizes the decoder's work before it runs: the number of scans, and how many 8×8 blocks the scans
 * visit in total (a progressive scan costs at least one step per block of its components, even when it codes
 * nothing), which the caller compares with budgets proportional to the image's own blocks.
 */
import { InputError } from "../../errors.ts";

/** What the decoder will have to do for a JPEG, read from its markers alone. */
export interface JpegWork {
  readonly width: number;
  readonly height: number;
  /** Components in the frame (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK). */
  readonly components: number;
  /** SOF0 baseline, SOF1 extended, SOF2 progressive, SOF9/SOF10 arithmetic. */
  readonly frameType: number;
  /** Start-of-scan markers before the end of the image. */
  readonly scans: number;
  /** 8×8 blocks of all components in the frame, padded to whole MCUs. */
  readonly frameBlocks: number;
  /** Sum over the scans of the blocks each scan visits. */
  readonly scanBlocks: number;
}

/** A JPEG that cannot be decoded: 400 with `param: "image"` and the reason. */
export function corruptJpeg(reason: string): InputError {
  return new InputError("invalid_request", `could not decode the JPEG image: ${reason}`, "image");
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const DRI = 0xdd;
const TEM = 0x01;
const isRst = (m: number): boolean => m >= 0xd0 && m <= 0xd7;
/** SOF markers libjpeg decodes (baseline, extended, progressive; arithmetic-coded sequential and progressive). */
const DECODABLE_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);
/** Other SOF markers (lossless, hierarchical, JPG): libjpeg's "Unsupported JPEG process". */
const OTHER_SOF = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc8, 0xcb, 0xcd, 0xce, 0xcf]);
/** Segments libjpeg reads by their declared length: DHT, DAC, DQT, DNL, APP0–15, COM. */
const isLengthSegment = (m: number): boolean => m === 0xc4 || m === 0xcc || m === 0xdb || m === 0xdc || (m >= 0xe0 && m <= 0xef) || m === 0xfe;

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly type: number;
  readonly ids: number[];
  readonly h: number[];
  readonly v: number[];
}

const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const hex = (m: number): string => `0x${m.toString(16).padStart(2, "0")}`;

function readFrame(b: Uint8Array, o: number, length: number, type: number): Frame {
  if (length < 8) throw corruptJpeg(`its frame header (SOF) is ${length} bytes long`);
  const [height, width, n] = [u16(b, o + 3), u16(b, o + 5), b[o + 7]];
  if (length !== 8 + 3 * n || n < 1 || n > 4) throw corruptJpeg(`its frame header declares ${n} components in ${length} bytes`);
  if (width === 0 || height === 0) throw corruptJpeg(`its frame header declares a ${width}×${height} image (a DNL height is not supported)`);
  const frame: Frame = { width, height, type, ids: [], h: [], v: [] };
  for (let i = 0, p = o + 8; i < n; i++, p += 3) {
    const [h, v] = [b[p + 1] >> 4, b[p + 1] & 15];
    if (h < 1 || h > 4 || v < 1 || v > 4) throw corruptJpeg(`component ${i} has sampling factors ${h}×${v}`);
    frame.ids.push(b[p]);
    frame.h.push(h);
    frame.v.push(v);
  }
  return frame;
}

/** Blocks a scan over `comps` (indices into the frame) visits: per-component blocks, or whole MCUs when interleaved. */
function blocksOf(f: Frame, comps: readonly number[]): number {
  const [hMax, vMax] = [Math.max(...f.h), Math.max(...f.v)];
  if (comps.length === 1) {
    const c = comps[0];
    return Math.ceil(Math.ceil((f.width * f.h[c]) / hMax) / 8) * Math.ceil(Math.ceil((f.height * f.v[c]) / vMax) / 8);
  }
  const mcus = Math.ceil(f.width / (8 * hMax)) * Math.ceil(f.height / (8 * vMax));
  return mcus * comps.reduce((sum, c) => sum + f.h[c] * f.v[c], 0);
}

/** Index just past the entropy-coded data starting at `o`: at the 0xFF of the next real marker, or the end. */
function skipEntropyData(b: Uint8Array, o: number): number {
  for (;;) {
    while (o < b.length && b[o] !== 0xff) o++;
    let m = o;
    while (m < b.length && b[m] === 0xff) m++; // 0xFF fill bytes before a marker or a stuffed zero
    if (m >= b.length) return b.length;
    if (b[m] !== 0x00 && !isRst(b[m])) return m - 1;
    o = m + 1;
  }
}

/**
 * Reads what a JPEG asks of the decoder, walking its markers as libjpeg does.
 *
 * @throws InputError 400 where libjpeg would fail (no SOI, a second SOI or SOF, a bad segment length, a DRI
 *   that is not 4 bytes, SOS before SOF or naming an unknown component, an unknown marker), and 415 for a
 *   JPEG process libjpeg does not decode (lossless, hierarchical).
 */
export function readJpegWork(b: Uint8Array): JpegWork {
  if (b[0] !== 0xff || b[1] !== SOI) throw corruptJpeg("it does not start with SOI");
  let frame: Frame | undefined;
  let scans = 0;
  let scanBlocks = 0;
  let o = 2;
  while (o < b.length) {
    while (o < b.length && b[o] !== 0xff) o++; // libjpeg skips stray bytes before a marker (with a warning)
    while (o < b.length && b[o] === 0xff) o++;
    if (o >= b.length) break;
    const marker = b[o++];
    if (marker === 0x00 || isRst(marker) || marker === TEM) continue; // no segment follows
    if (marker === EOI) break;
    if (marker === SOI) throw corruptJpeg("it has a second SOI marker");
    if (o + 2 > b.length) break; // cut short: the decoder reports it
    const length = u16(b, o);
    if (length < 2) throw corruptJpeg(`its ${hex(marker)} segment declares ${length} bytes`);
    if (DECODABLE_SOF.has(marker)) {
      if (frame) throw corruptJpeg("it has a second frame header (SOF)");
      if (o + length > b.length) break;
      frame = readFrame(b, o, length, marker);
    } else if (OTHER_SOF.has(marker)) {
      throw new InputError("unsupported_media_type", `JPEG process ${hex(marker)} (lossless or hierarchical) is not supported`, "image");
    } else if (marker === DRI) {
      if (length !== 4) throw corruptJpeg(`its restart interval segment (DRI) declares ${length} bytes, not 4`);
    } else if (marker === SOS) {
      if (!frame) throw corruptJpeg("a scan (SOS) comes before the frame header (SOF)");
      const n = b[o + 2];
      if (length !== 6 + 2 * n || n < 1 || n > 4) throw corruptJpeg(`a scan header declares ${n} components in ${length} bytes`);
      if (o + length > b.length) break;
      const comps: number[] = [];
      for (let i = 0; i < n; i++) {
        const c = frame.ids.indexOf(b[o + 3 + 2 * i]);
        if (c < 0) throw corruptJpeg(`a scan names component ${b[o + 3 + 2 * i]}, which the frame does not have`);
        comps.push(c);
      }
      scans++;
      scanBlocks += blocksOf(frame, comps);
      o = skipEntropyData(b, o + length);
      continue;
    } else if (!isLengthSegment(marker)) {
      throw corruptJpeg(`it has an unknown marker ${hex(marker)}`);
    }
    o += length;
  }
  if (!frame) throw corruptJpeg("it has no frame header (SOF)");
  return {
    width: frame.width,
    height: frame.height,
    components: frame.ids.length,
    frameType: frame.type,
    scans,
    frameBlocks: blocksOf(frame, frame.ids.map((_, i) => i)),
    scanBlocks,
  };
}
