/**
 * The block structure of a GIF (GIF89a §17–§24) up to its first image, walked as Pillow's GifImagePlugin walks
 * it for frame 0 (`_open`, `_seek(0)`): the logical screen descriptor and global colour table, then extensions
 * (only a graphic control extension's transparency flag and index are used; every other extension is skipped by
 * its sub-blocks), stray bytes between blocks skipped one by one, and the first image descriptor with its local
 * colour table. What comes after the first image (more frames, a trailer, other data) is not read.
 *
 * As in Pillow, the image is the logical screen grown to hold the first frame when the frame reaches past it;
 * pixels outside the frame are the transparent index when there is one, else index 0; indices map through the
 * frame's colour table (local, else global), and indices past the table, or every index when there is none, are
 * grey levels i, i, i (Pillow's initial palette ramp). The transparent index keeps its palette colour:
 * `convert("RGB")` drops transparency.
 */
import { corruptGif } from "./errors.ts";

/** What frame 0 of a GIF needs to be decoded. */
export interface GifFrame {
  /** The image's size: the logical screen, grown to hold the first frame. */
  readonly width: number;
  readonly height: number;
  /** The first frame's place and size (≥ 1 each). */
  readonly x: number;
  readonly y: number;
  readonly frameWidth: number;
  readonly frameHeight: number;
  readonly interlaced: boolean;
  /** uint8[256, 3]: the colour of every index. */
  readonly palette: Uint8Array;
  /** Index of the pixels outside the frame. */
  readonly fill: number;
  /** LZW minimum code size (the byte after the image descriptor). */
  readonly minCodeSize: number;
  /** Offset of the first data sub-block's size byte. */
  readonly dataStart: number;
}

const IMAGE = 0x2c; // ','
const EXTENSION = 0x21; // '!'
const TRAILER = 0x3b; // ';'
const GRAPHIC_CONTROL = 0xf9;

const u16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);

const truncated = (where: string): Error => corruptGif(`the file ends inside ${where} (the file is truncated)`);

/** Offset just past the sub-blocks starting at `o` (their zero-size terminator included). */
function skipSubBlocks(b: Uint8Array, o: number, where: string): number {
  for (;;) {
    if (o >= b.length) throw truncated(where);
    const n = b[o];
    if (n === 0) return o + 1;
    o += 1 + n;
  }
}

/** uint8[256, 3]: Pillow's grey ramp with `table` (3·n bytes) over its first n entries. */
function lookupTable(table: Uint8Array | undefined): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.fill(i, 3 * i, 3 * i + 3);
  if (table) lut.set(table.subarray(0, 768));
  return lut;
}

/** A colour table of `3 << bits` bytes at `o` (bits = packed field & 7, plus 1). */
function colourTable(b: Uint8Array, o: number, packed: number, where: string): Uint8Array {
  const size = 3 << ((packed & 7) + 1);
  if (o + size > b.length) throw truncated(where);
  return b.subarray(o, o + size);
}

/**
 * Reads a GIF's blocks up to its first image.
 *
 * @throws InputError 400 for a version other than 87a/89a, a file that ends before the first image's data, a
 *   graphic control extension too short for its fields (3 bytes, 4 with a transparent index), an empty first
 *   frame or an LZW minimum code size over 12 (Pillow decodes 0–12).
 */
export function readGifFrame(b: Uint8Array): GifFrame {
  const version = String.fromCharCode(b[3], b[4], b[5]);
  if (version !== "87a" && version !== "89a") throw corruptGif(`its version "GIF${version}" is neither GIF87a nor GIF89a`);
  if (b.length < 13) throw truncated("the logical screen descriptor");
  const screen = [u16(b, 6), u16(b, 8)];
  let o = 13;
  let global: Uint8Array | undefined;
  if (b[10] & 0x80) {
    global = colourTable(b, o, b[10], "the global colour table");
    o += global.length;
  }
  let transparent: number | undefined;
  for (;;) {
    if (o >= b.length) throw truncated("the blocks before the first image");
    const block = b[o++];
    if (block === TRAILER) throw corruptGif("it has no image (the trailer comes before any image descriptor)");
    if (block === EXTENSION) {
      if (o >= b.length) throw truncated("an extension");
      const label = b[o++];
      if (label === GRAPHIC_CONTROL) {
        // Pillow reads the packed fields and the delay (3 bytes), and the index when the transparency flag is set.
        if (o + 4 > b.length) throw truncated("the graphic control extension");
        const transparency = (b[o + 1] & 1) === 1; // packed fields bit 0: transparent colour flag
        if (b[o] < (transparency ? 4 : 3)) throw corruptGif(`its graphic control extension is ${b[o]} bytes long, too short`);
        if (transparency) {
          if (o + 5 > b.length) throw truncated("the graphic control extension");
          transparent = b[o + 4];
        }
      }
      o = skipSubBlocks(b, o, "an extension");
      continue;
    }
    if (block !== IMAGE) continue; // a stray byte: Pillow skips it
    if (o + 9 > b.length) throw truncated("the image descriptor");
    const [x, y, frameWidth, frameHeight, packed] = [u16(b, o), u16(b, o + 2), u16(b, o + 4), u16(b, o + 6), b[o + 8]];
    o += 9;
    let local: Uint8Array | undefined;
    if (packed & 0x80) {
      local = colourTable(b, o, packed, "the local colour table");
      o += local.length;
    }
    if (o >= b.length) throw truncated("the image descriptor");
    const minCodeSize = b[o];
    if (frameWidth === 0 || frameHeight === 0) throw corruptGif(`its first frame is empty (${frameWidth}×${frameHeight})`);
    if (minCodeSize > 12) throw corruptGif(`its LZW minimum code size is ${minCodeSize}, over 12`);
    return {
      width: Math.max(screen[0], x + frameWidth),
      height: Math.max(screen[1], y + frameHeight),
      x,
      y,
      frameWidth,
      frameHeight,
      interlaced: (packed & 0x40) !== 0,
      palette: lookupTable(local ?? global),
      fill: transparent ?? 0,
      minCodeSize,
      dataStart: o + 1,
    };
  }
}
