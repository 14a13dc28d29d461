/**
 * The chunk layer of a PNG (PNG spec §5): signature, then chunks of `length (u32 BE) · type (4 letters) ·
 * data · CRC-32 (over type and data)`. This module walks them up to the end of the image data and returns
 * the header, the palette, the compressed image data (the IDAT chunks' payloads, in order) and the compressed
 * metadata chunks Pillow inflates while opening a file (iCCP, zTXt, compressed iTXt). Nothing is inflated here.
 */
import { corruptPng } from "./errors.ts";

/** PNG signature (PNG spec §5.2). */
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

/** Largest chunk length the spec allows (§5.3: 2^31 − 1). */
const MAX_CHUNK_LENGTH = 0x7fffffff;

/** IHDR fields (PNG spec §11.2.2). */
export interface PngHeader {
  readonly width: number;
  readonly height: number;
  /** Bits per sample: 1, 2, 4, 8 or 16. */
  readonly depth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  readonly colourType: number;
  readonly interlaced: boolean;
}

/** What decoding needs from the chunks. */
export interface PngChunks {
  readonly header: PngHeader;
  /** PLTE entries as packed RGB triples (absent when the file has no PLTE). */
  readonly palette?: Uint8Array;
  /** The zlib stream of the image: the payloads of the consecutive IDAT chunks, in order. */
  readonly idat: readonly Uint8Array[];
  /** Compressed metadata before the image data (iCCP profile, zTXt / compressed iTXt text): type and zlib stream. */
  readonly metadata: readonly { readonly type: string; readonly data: Uint8Array }[];
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `bytes` (PNG spec Annex D). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function parseHeader(data: Uint8Array): PngHeader {
  if (data.length !== 13) throw corruptPng(`its IHDR chunk has ${data.length} bytes, not 13`);
  const header = {
    width: u32(data, 0),
    height: u32(data, 4),
    depth: data[8],
    colourType: data[9],
    interlaced: data[12] === 1,
  };
  if (header.width === 0 || header.height === 0) throw corruptPng(`it declares a ${header.width}×${header.height} image`);
  if (data[10] !== 0 || data[11] !== 0 || data[12] > 1) {
    throw corruptPng(`its IHDR has compression ${data[10]}, filter ${data[11]}, interlace ${data[12]} (only 0, 0, 0|1 exist)`);
  }
  return header;
}

/**
 * Walks the chunks of `bytes` up to the end of the image data (the first non-IDAT chunk after an IDAT, or
 * IEND). Checks the signature, every chunk's length and CRC (IDAT's too: a damaged stream is refused here
 * rather than half-decoded), a single IHDR first, and PLTE before the image data.
 *
 * @throws InputError 400 for anything malformed, naming the chunk.
 */
export function readPngChunks(bytes: Uint8Array): PngChunks {
  for (let i = 0; i < SIGNATURE.length; i++) if (bytes[i] !== SIGNATURE[i]) throw corruptPng("it does not start with the PNG signature");
  let header: PngHeader | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  const metadata: { type: string; data: Uint8Array }[] = [];
  let o = SIGNATURE.length;
  for (let index = 0; ; index++) {
    if (o === bytes.length && idat.length > 0) break; // no IEND: tolerated once the image data is complete
    if (o + 12 > bytes.length) throw corruptPng(`it is cut short inside chunk ${index} (at byte ${o} of ${bytes.length})`);
    const length = u32(bytes, o);
    const typeBytes = bytes.subarray(o + 4, o + 8);
    if (length > MAX_CHUNK_LENGTH || !typeBytes.every(isLetter)) throw corruptPng(`chunk ${index} at byte ${o} has an invalid length or type`);
    const type = String.fromCharCode(...typeBytes);
    const end = o + 8 + length;
    if (end + 4 > bytes.length) throw corruptPng(`its ${type} chunk is cut short (${length} bytes declared at byte ${o})`);
    if (crc32(bytes.subarray(o + 4, end)) !== u32(bytes, end)) throw corruptPng(`its ${type} chunk fails its CRC check`);
    const data = bytes.subarray(o + 8, end);
    o = end + 4;

    if (index === 0 && type !== "IHDR") throw corruptPng("its first chunk is not IHDR");
    if (type === "IHDR") {
      if (header) throw corruptPng("it has more than one IHDR chunk");
      header = parseHeader(data);
    } else if (type === "PLTE") {
      if (idat.length > 0) throw corruptPng("its PLTE chunk comes after the image data");
      if (data.length === 0 || data.length % 3 !== 0 || data.length > 256 * 3) throw corruptPng(`its PLTE chunk has ${data.length} bytes`);
      palette ??= data;
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (idat.length > 0 || type === "IEND") {
      break; // the image data has ended (later chunks are metadata Pillow's convert("RGB") ignores)
    } else if (type === "iCCP" || type === "zTXt" || type === "iTXt") {
      const stream = compressedPayload(type, data);
      if (stream) metadata.push({ type, data: stream });
    }
  }
  if (!header) throw corruptPng("it has no IHDR chunk");
  if (idat.length === 0) throw corruptPng("it has no image data (IDAT)");
  return { header, palette, idat, metadata };
}

/**
 * The zlib stream inside a compressed metadata chunk (PNG spec §11.3.3.3, §11.3.4.4, §11.3.4.5): after a
 * NUL-terminated keyword and a compression method byte (iTXt: a compression flag and method, then language and
 * translated keyword, each NUL-terminated). Undefined when the chunk holds none (uncompressed iTXt, no NUL).
 */
function compressedPayload(type: string, data: Uint8Array): Uint8Array | undefined {
  const nul = data.indexOf(0);
  if (nul < 0) return undefined;
  if (type !== "iTXt") return data.subarray(nul + 2);
  if (data[nul + 1] !== 1) return undefined; // not compressed
  const language = data.indexOf(0, nul + 3);
  const translated = language < 0 ? -1 : data.indexOf(0, language + 1);
  return translated < 0 ? undefined : data.subarray(translated + 1);
}
