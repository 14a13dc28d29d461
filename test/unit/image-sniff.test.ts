import { encode as encodePng } from "fast-png";
import { describe, expect, it } from "vitest";
import { sniffImage } from "../../shared/image/index.ts";
import { asciiBytes, expectInputError, pngWithHeader, rgbaJpeg } from "../fixtures/images/helpers.ts";

/** Little-endian bytes of `value`, `n` bytes long. */
const le = (value: number, n: number): string =>
  String.fromCharCode(...Array.from({ length: n }, (_, i) => Math.floor(value / 256 ** i) & 255));
const be16 = (value: number): string => String.fromCharCode(value >> 8, value & 255);

/** A JPEG header: SOI, an APP0 segment, fill bytes, then a SOFn frame header declaring w×h. */
const jpegHeader = (sof: number, w: number, h: number): Uint8Array =>
  asciiBytes(`\xff\xd8\xff\xe0${be16(16)}JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xff\xff${String.fromCharCode(sof)}${be16(17)}\x08${be16(h)}${be16(w)}\x03`);

describe("sniffImage reads the declared size from the header only", () => {
  it.each([
    ["PNG (fast-png)", encodePng({ width: 7, height: 5, channels: 3, depth: 8, data: new Uint8Array(105) }), "png", 7, 5],
    ["PNG (IHDR only)", pngWithHeader(100_000, 3), "png", 100_000, 3],
    ["JPEG (jpeg-js)", rgbaJpeg(33, 17, [0, 0, 0]), "jpeg", 33, 17],
    ["JPEG progressive SOF2 after APP0 and fill bytes", jpegHeader(0xc2, 4000, 3000), "jpeg", 4000, 3000],
    ["WebP lossy (VP8)", asciiBytes(`RIFF${le(0, 4)}WEBPVP8 ${le(0, 4)}\0\0\0\x9d\x01\x2a${le(640, 2)}${le(480 | 0x4000, 2)}`), "webp", 640, 480],
    ["WebP lossless (VP8L)", asciiBytes(`RIFF${le(0, 4)}WEBPVP8L${le(0, 4)}\x2f${le(99 | (49 << 14), 4)}\0`), "webp", 100, 50],
    ["WebP extended (VP8X)", asciiBytes(`RIFF${le(0, 4)}WEBPVP8X${le(10, 4)}\0\0\0\0${le(1919, 3)}${le(1079, 3)}`), "webp", 1920, 1080],
    ["GIF", asciiBytes(`GIF87a${le(320, 2)}${le(200, 2)}\0\0\0`), "gif", 320, 200],
    ["BMP (info header, top-down)", asciiBytes(`BM${le(0, 8)}${le(54, 4)}${le(40, 4)}${le(31, 4)}${le(-9 >>> 0, 4)}`), "bmp", 31, 9],
    ["BMP (core header)", asciiBytes(`BM${le(0, 8)}${le(26, 4)}${le(12, 4)}${le(12, 2)}${le(34, 2)}`), "bmp", 12, 34],
  ])("%s", (_, bytes, format, width, height) => {
    expect(sniffImage(bytes)).toEqual({ format, width, height });
  });
});

describe("sniffImage errors", () => {
  it("empty or unrecognised input → unsupported_media_type", () => {
    expectInputError(() => sniffImage(new Uint8Array(0)), "unsupported_media_type", /^image is empty/);
    expectInputError(() => sniffImage(asciiBytes("<html>")), "unsupported_media_type", /unrecognised file signature/);
    expectInputError(() => sniffImage(asciiBytes("\x89PNX\r\n\x1a\n")), "unsupported_media_type");
  });

  it.each([
    ["PNG signature only", asciiBytes("\x89PNG\r\n\x1a\n"), /PNG header is cut short/],
    ["half a PNG signature", asciiBytes("\x89PN"), /PNG header is cut short/],
    ["PNG whose first chunk is not IHDR", asciiBytes(`\x89PNG\r\n\x1a\n\0\0\0\x0dIDAT${le(0, 13)}`), /does not start with an IHDR/],
    ["PNG declaring width 0", pngWithHeader(0, 10), /declares an empty 0×10 image/],
    ["JPEG ending before SOF", jpegHeader(0xc0, 10, 10).subarray(0, 22), /JPEG header ends before the frame header/],
    ["JPEG with a scan before any SOF", asciiBytes("\xff\xd8\xff\xda\0\x08\x01\x01\0\0\x3f\0"), /no frame header \(SOF\)/],
    ["JPEG with height 0 (DNL)", jpegHeader(0xc0, 10, 0), /declares an empty 10×0 image/],
    ["JPEG with a zero-length segment", asciiBytes("\xff\xd8\xff\xe1\0\0"), /invalid length 0/],
    ["WebP with an unknown chunk", asciiBytes(`RIFF${le(0, 4)}WEBPABCD${le(0, 14)}`), /unknown first chunk "ABCD"/],
    ["cut-short GIF", asciiBytes("GIF89a\x01"), /GIF header is cut short/],
  ])("%s → invalid_request", (_, bytes, message) => {
    expectInputError(() => sniffImage(bytes), "invalid_request", message);
  });

  it("messages say the image is truncated or corrupt", () => {
    expectInputError(() => sniffImage(asciiBytes("\x89PNG")), "invalid_request", /^image is truncated or corrupt: /);
  });
});
