import { encode as encodePng } from "fast-png";
import { deflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { decodeImage, preprocessImage } from "../../shared/image/index.ts";
import { asciiBytes, chunk, concat, expectRejection, pngWithHeader, rgbaJpeg, withPngCrcs } from "../fixtures/images/helpers.ts";

const LIMITS = { maxPixels: 1 << 20 };

/** The RGB triples of a decoded image, for small expectations. */
async function pixels(bytes: Uint8Array): Promise<number[][]> {
  const img = await decodeImage(bytes, LIMITS);
  return Array.from({ length: img.width * img.height }, (_, i) => [...img.data.subarray(3 * i, 3 * i + 3)]);
}

describe("decodeImage: PNG colour types → RGB as Pillow's convert('RGB')", () => {
  it("RGB 8-bit is copied", async () => {
    const png = encodePng({ width: 2, height: 1, channels: 3, depth: 8, data: new Uint8Array([1, 2, 3, 250, 251, 252]) });
    expect(await pixels(png)).toEqual([[1, 2, 3], [250, 251, 252]]);
  });

  it("RGBA drops alpha without compositing", async () => {
    const data = new Uint8Array([10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255]);
    expect(await pixels(encodePng({ width: 3, height: 1, channels: 4, depth: 8, data }))).toEqual([
      [10, 20, 30],
      [40, 50, 60],
      [70, 80, 90],
    ]);
  });

  it("greyscale and grey+alpha replicate the grey level", async () => {
    expect(await pixels(encodePng({ width: 2, height: 1, channels: 1, depth: 8, data: new Uint8Array([0, 77]) }))).toEqual([
      [0, 0, 0],
      [77, 77, 77],
    ]);
    const la = encodePng({ width: 2, height: 1, channels: 2, depth: 8, data: new Uint8Array([5, 0, 200, 9]) });
    expect(await pixels(la)).toEqual([[5, 5, 5], [200, 200, 200]]);
  });

  it("sub-byte greyscale is scaled to 0..255 (1-bit ×255, 2-bit ×85, 4-bit ×17)", async () => {
    // 5 pixels per row, rows padded to whole bytes
    const two = encodePng({ width: 5, height: 1, channels: 1, depth: 2, data: new Uint8Array([0b00011011, 0b11000000]) });
    expect((await pixels(two)).map((p) => p[0])).toEqual([0, 85, 170, 255, 255]);
    const one = encodePng({ width: 3, height: 2, channels: 1, depth: 1, data: new Uint8Array([0b10100000, 0b01000000]) });
    expect((await pixels(one)).map((p) => p[0])).toEqual([255, 0, 255, 0, 255, 0]);
    const four = encodePng({ width: 2, height: 1, channels: 1, depth: 4, data: new Uint8Array([0x1f]) });
    expect((await pixels(four)).map((p) => p[0])).toEqual([17, 255]);
  });

  it("16-bit samples keep the high byte", async () => {
    const rgb16 = encodePng({ width: 1, height: 1, channels: 3, depth: 16, data: new Uint16Array([0xffff, 0x8001, 0x00ff]) });
    expect(await pixels(rgb16)).toEqual([[255, 128, 0]]);
    const rgba16 = encodePng({ width: 1, height: 1, channels: 4, depth: 16, data: new Uint16Array([0x1234, 0x5678, 0x9abc, 0]) });
    expect(await pixels(rgba16)).toEqual([[0x12, 0x56, 0x9a]]);
    const grey16 = encodePng({ width: 2, height: 1, channels: 1, depth: 16, data: new Uint16Array([0x0100, 0xfe00]) });
    expect(await pixels(grey16)).toEqual([[1, 1, 1], [254, 254, 254]]);
  });

  it("palette images are looked up in PLTE (8-bit and packed 2-bit indices, tRNS ignored)", async () => {
    const palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255, 128]];
    const p8 = encodePng({ width: 3, height: 1, channels: 1, depth: 8, palette, data: new Uint8Array([2, 0, 1]) });
    expect(await pixels(p8)).toEqual([[0, 0, 255], [255, 0, 0], [0, 255, 0]]);
    const p2 = encodePng({ width: 3, height: 1, channels: 1, depth: 2, palette, data: new Uint8Array([0b01100000]) });
    expect(await pixels(p2)).toEqual([[0, 255, 0], [0, 0, 255], [255, 0, 0]]);
  });

  it("Adam7-interlaced PNGs decode to the same pixels as plain ones, 8-bit and packed sub-byte samples", async () => {
    const data = new Uint8Array(5 * 3 * 3).map((_, i) => i * 5);
    const png = encodePng({ width: 5, height: 3, channels: 3, depth: 8, data }, { interlace: "Adam7" });
    expect((await decodeImage(png, LIMITS)).data).toEqual(data);
    // 2-bit greyscale, 11×9 (passes of uneven sizes), from the raw Adam7 stream built here
    const grey = Array.from({ length: 9 }, (_, y) => Array.from({ length: 11 }, (_, x) => (x * 3 + y) & 3));
    const expected = grey.flat().flatMap((v) => [v * 85, v * 85, v * 85]);
    expect(Array.from((await decodeImage(adam7Grey2(grey), LIMITS)).data)).toEqual(expected);
  });
});

describe("decodeImage: JPEG", () => {
  it("decodes a JPEG encoded with jpeg-js to the right size and colour", async () => {
    const img = await decodeImage(rgbaJpeg(33, 17, [200, 100, 30]), LIMITS);
    expect([img.width, img.height, img.data.length]).toEqual([33, 17, 33 * 17 * 3]);
    for (let i = 0; i < 33 * 17; i++) {
      const [r, g, b] = img.data.subarray(3 * i, 3 * i + 3);
      expect(Math.max(Math.abs(r - 200), Math.abs(g - 100), Math.abs(b - 30)), `pixel ${i}`).toBeLessThanOrEqual(4);
    }
  });

  it("preprocesses a JPEG end to end", async () => {
    const px = await preprocessImage(rgbaJpeg(40, 30, [255, 255, 255]), { size: 14, rescale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, LIMITS);
    expect(px.length).toBe(3 * 14 * 14);
    expect(Math.min(...px)).toBeGreaterThan(0.95);
  });
});

describe("decodeImage: bad input is always an InputError", () => {
  const png = encodePng({ width: 7, height: 5, channels: 3, depth: 8, data: new Uint8Array(105).map((_, i) => (i * 37) & 255) });
  const jpeg = rgbaJpeg(16, 16, [10, 200, 90]);

  it("empty input → unsupported_media_type", async () => {
    await expectRejection(() => decodeImage(new Uint8Array(0), LIMITS), "unsupported_media_type", /empty/);
  });

  it("unknown signature → unsupported_media_type", async () => {
    await expectRejection(() => decodeImage(asciiBytes("hello, this is not an image"), LIMITS), "unsupported_media_type", /not a PNG, JPEG, WebP or GIF image/);
    const random = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
    await expectRejection(() => decodeImage(random, LIMITS), "unsupported_media_type");
  });

  it("BMP → unsupported_media_type naming the format", async () => {
    const bmp = asciiBytes("BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x04\0\0\0\x04\0\0\0\x01\0\x18\0");
    await expectRejection(() => decodeImage(bmp, LIMITS), "unsupported_media_type", /^BMP images are not supported; send PNG, JPEG, WebP or GIF$/);
  });

  it.each([
    ["WebP", asciiBytes("RIFF\x24\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x1f\0\0\x0f\0\0\0\0\0\0\0\0"), /^could not decode the WebP image: its RIFF header declares 44 bytes but the file has 36 \(the file is truncated\)$/],
    ["GIF", asciiBytes("GIF89a\x10\0\x08\0\0\0\0"), /^could not decode the GIF image: the file ends inside the blocks before the first image \(the file is truncated\)$/],
  ])("a %s header without data → invalid_request", async (_, bytes, message) => {
    await expectRejection(() => decodeImage(bytes, LIMITS), "invalid_request", message);
  });

  it("every truncation of a PNG inside its image data fails with an InputError; a missing IEND is tolerated, as Pillow tolerates it", async () => {
    for (let n = 1; n < png.length; n++) {
      const cut = png.subarray(0, n);
      // one byte cannot be told apart from other formats; from two on, it is a truncated PNG
      if (n < png.length - 12) await expectRejection(() => decodeImage(cut, LIMITS), n < 2 ? "unsupported_media_type" : "invalid_request");
      else await expectImageOrInputError(() => decodeImage(cut, LIMITS)); // IEND (12 bytes) cut
    }
    expect((await decodeImage(png.subarray(0, png.length - 12), LIMITS)).width).toBe(7);
    await expectRejection(() => decodeImage(png.subarray(0, png.length >> 1), LIMITS), "invalid_request", /could not decode the PNG image: /);
  });

  it("every truncation of a JPEG fails with an InputError", async () => {
    for (let n = 2; n < jpeg.length - 1; n++) await expectRejection(() => decodeImage(jpeg.subarray(0, n), LIMITS), "invalid_request");
    await expectRejection(() => decodeImage(jpeg.subarray(0, jpeg.length >> 1), LIMITS), "invalid_request", /could not decode the JPEG image: /);
  });

  it("declared size over maxPixels is rejected from the header alone, before decoding", async () => {
    const huge = pngWithHeader(100_000, 100_000); // IHDR only: no pixel data at all
    const t0 = performance.now();
    await expectRejection(
      () => decodeImage(huge, { maxPixels: 50_000_000 }),
      "payload_too_large",
      /^image is 100000×100000 = 10000000000 pixels, over the limit of 50000000$/,
    );
    expect(performance.now() - t0).toBeLessThan(50);
    await expectRejection(() => decodeImage(png, { maxPixels: 34 }), "payload_too_large", /7×5 = 35 pixels/);
    expect((await decodeImage(png, { maxPixels: 35 })).width).toBe(7);
    await expectRejection(() => decodeImage(jpeg, { maxPixels: 255 }), "payload_too_large", /16×16 = 256 pixels/);
  });

  it("an invalid colour type / bit depth pair is rejected", async () => {
    const rgb4 = pngWithHeader(4, 4);
    rgb4[24] = 4; // RGB must be 8 or 16 bits
    await expectRejection(() => decodeImage(withPngCrcs(withIdat(rgb4)), LIMITS), "invalid_request", /colour type 2 with bit depth 4/);
  });

  it("a chunk whose CRC does not match is refused, naming the chunk", async () => {
    const bad = new Uint8Array(png);
    bad[8 + 8 + 3] ^= 1; // a byte of IHDR's width
    await expectRejection(() => decodeImage(bad, LIMITS), "invalid_request", /IHDR chunk fails its CRC check/);
  });

  it("a second IHDR cannot override the checked size", async () => {
    const ihdrEnd = 8 + 25;
    const second = pngWithHeader(60_000, 60_000).subarray(8, ihdrEnd); // its IHDR chunk
    const spliced = new Uint8Array([...png.subarray(0, ihdrEnd), ...second, ...png.subarray(ihdrEnd)]);
    await expectRejection(() => decodeImage(spliced, LIMITS), "invalid_request", /more than one IHDR/);
  });
});

/** Either a well-formed RgbImage or an InputError; anything else fails. */
async function expectImageOrInputError(run: () => Promise<{ width: number; height: number; data: Uint8Array }>): Promise<void> {
  try {
    const img = await run();
    expect(img.data.length).toBe(img.width * img.height * 3);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
  }
}

/** A PNG that is `header` (signature + IHDR) plus one empty-image IDAT (a zlib stream of nothing) and IEND. */
function withIdat(header: Uint8Array): Uint8Array {
  const idat = deflateSync(new Uint8Array(0));
  return concat(header.subarray(0, 33), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0)));
}

/** A 2-bit greyscale Adam7 PNG of `rows` (values 0–3), filters 0, assembled pass by pass (PNG spec §8.2). */
function adam7Grey2(rows: number[][]): Uint8Array {
  const [h, w] = [rows.length, rows[0].length];
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const raw: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    for (let y = y0; y < h; y += dy) {
      const xs = [];
      for (let x = x0; x < w; x += dx) xs.push(rows[y][x]);
      if (xs.length === 0) continue;
      const bytes = new Array(Math.ceil(xs.length / 4)).fill(0);
      xs.forEach((v, i) => (bytes[i >> 2] |= v << (6 - 2 * (i & 3))));
      raw.push(0, ...bytes);
    }
  }
  const header = pngWithHeader(w, h);
  header.set([2, 0, 0, 0, 1], 24); // 2-bit greyscale, Adam7
  return concat(withPngCrcs(header).subarray(0, 33), chunk("IDAT", deflateSync(Uint8Array.from(raw))), chunk("IEND", new Uint8Array(0)));
}
