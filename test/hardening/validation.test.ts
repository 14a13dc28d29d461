/**
 * Every bad input refused cleanly, through the real decoder app (`app.request`, fake engine): the catalogue of
 * malformed requests (support.ts) gets its exact 4xx and one JSON error shape; configured limits are honoured;
 * no bad input reaches the model.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeImage } from "../../shared/image/index.ts";
import { readJpegWork } from "../../shared/image/jpeg/index.ts";
import { pngDataBytes } from "../../shared/image/png/index.ts";
import { expectRejection } from "../fixtures/images/helpers.ts";
import { SHARED } from "../helpers/golden.ts";
import type { FakeEngine } from "../serving/support/fake-engine.ts";
import { base64, createHarness, post } from "../serving/support/harness.ts";
import { badRequests, concatBytes, expectRefused, GOOD_PNG, iccBomb, jpegDeclaring, jpegWithHiddenScans, jpegWithScans, latin1, nlenBomb, png, pngBomb, pngChunk, requestInit } from "./support.ts";

describe("malformed requests", () => {
  it("each gets its 4xx and a JSON error body; none reaches the model", async () => {
    const h = await createHarness({ maxPixels: 2 * 1024 * 1024 });
    for (const bad of badRequests()) await expectRefused(await h.app.request(bad.path, requestInit(bad)), bad);
    // Only the good image of the prompt-token cases was encoded; nothing was prefilled or decoded.
    expect((h.engine as FakeEngine).calls).toEqual({ encode: 1, prefill: 0, step: 0 });
  });

  it("the vision worker's own route refuses the same uploads", async () => {
    const h = await createHarness({ maxPixels: 2 * 1024 * 1024 });
    for (const bad of badRequests().filter((b) => b.path === "/v1/images")) {
      await expectRefused(await h.visionApp.request(bad.path, requestInit(bad)), bad);
    }
  });
});

describe("configurable limits", () => {
  it("body size, image bytes, max_tokens, prompt tokens and context come from the vars", async () => {
    const h = await createHarness({
      vars: { MAX_BODY_BYTES: "4096", MAX_NEW_TOKENS: "8" },
      session: { maxPromptTokens: 5, contextTokens: 50 },
    });
    const big = await post(h.app, "/v1/generate", { prompt: "x".repeat(5000), image_id: `img_${"0".repeat(64)}` });
    expect([big.status, (await big.json<any>()).error.type]).toEqual([413, "payload_too_large"]);
    const image = base64(GOOD_PNG).slice(0, 100);
    expect((await post(h.app, "/v1/generate", { prompt: "x", image, max_tokens: 9 })).status).toBe(400);

    const ok = await createHarness({ vars: { MAX_IMAGE_BYTES: "2000" }, session: { maxPromptTokens: 5, contextTokens: 50 } });
    const tooBig = await post(ok.app, "/v1/generate", { prompt: "x", image: base64(GOOD_PNG) });
    expect([tooBig.status, (await tooBig.json<any>()).error.param]).toEqual([413, "image"]);
    const upload = await ok.app.request("/v1/images", { method: "POST", headers: { "content-type": "image/png" }, body: GOOD_PNG });
    expect(upload.status).toBe(413);

    const small = await createHarness({ session: { maxPromptTokens: 5, contextTokens: 50 } });
    const long = await post(small.app, "/v1/generate", { prompt: "one two three four five six", image: base64(GOOD_PNG) });
    expect(await long.json<any>()).toMatchObject({ error: { type: "unprocessable", param: "prompt", message: expect.stringMatching(/over the limit of 5/) } });
    const context = await post(small.app, "/v1/generate", { prompt: "caption en", image: base64(GOOD_PNG), max_tokens: 20 });
    expect([context.status, (await context.json<any>()).error.param]).toEqual([422, "max_tokens"]);
    expect((await post(small.app, "/v1/generate", { prompt: "caption en", image: base64(GOOD_PNG), max_tokens: 10, stream: false })).status).toBe(200);
  });

  it("a var that is not a number is a 500 that names it (a deployment error)", async () => {
    await expect(createHarness({ vars: { MAX_NEW_TOKENS: "lots" } })).rejects.toThrow(/MAX_NEW_TOKENS/);
  });
});

describe("PNG decompression bombs: the inflate that decodes is the one that is capped", () => {
  it("a zlib stream that exceeds the header's size is refused, in bounded memory", async () => {
    const bombs = [pngBomb(), iccBomb()];
    expect(bombs.map((b) => b.length < 200_000)).toEqual([true, true]);
    const before = process.memoryUsage().arrayBuffers;
    await expectRejection(() => decodeImage(bombs[0], { maxPixels: 1e6 }), "invalid_request", /inflates to more than the 12352 bytes a 64×64 image holds/);
    await expectRejection(() => decodeImage(bombs[1], { maxPixels: 1e6 }), "invalid_request", /iCCP chunk inflates to more than 1048576 bytes/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });

  it("a stored block whose NLEN is not LEN's complement is refused (zlib's rule), not waved through", async () => {
    // Before: the guard's zlib failed at once and counted that as "within the limit", while fast-png's
    // inflater ignored NLEN and inflated all that followed. Now zlib decodes, so zlib's refusal is final.
    const t0 = performance.now();
    await expectRejection(() => decodeImage(nlenBomb("IDAT", 8 * 1024 * 1024), { maxPixels: 1e6 }), "invalid_request", /not a valid zlib stream/);
    // In an ICC profile (never used for RGB) zlib's refusal means there is nothing to inflate: Pillow drops the
    // profile and decodes the image, and so do we, without inflating the 8 MiB behind the bad block.
    const iccp = nlenBomb("iCCP", 8 * 1024 * 1024);
    const before = process.memoryUsage().arrayBuffers;
    expect(await decodeImage(iccp, { maxPixels: 1e6 })).toMatchObject({ width: 8, height: 8 });
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * 1024 * 1024);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it("ordinary PNGs decode; a corrupt ICC profile is ignored as Pillow ignores it", async () => {
    const raw = new Uint8Array(30 * (1 + 40 * 3)).map((_, i) => (i % 121 === 0 ? 0 : 0x80)); // filter 0 per row
    expect(await decodeImage(png(40, 30, raw), { maxPixels: 1e6 })).toMatchObject({ width: 40, height: 30 });
    const badProfile = pngChunk("iCCP", concatBytes(latin1("icc\0\0"), Uint8Array.of(0x78, 0x9c, 0xff, 0xff)));
    expect(await decodeImage(png(40, 30, raw, [badProfile]), { maxPixels: 1e6 })).toMatchObject({ width: 40, height: 30 });
  });

  it("knows the inflated size of plain and interlaced images", () => {
    const header = (width: number, height: number, colourType: number, depth: number, interlaced: boolean) => ({ width, height, colourType, depth, interlaced });
    expect(pngDataBytes(header(40, 30, 2, 8, false))).toBe(30 * (1 + 120));
    expect(pngDataBytes(header(1, 1, 0, 1, false))).toBe(2);
    // Adam7 on 8×8 RGBA 8-bit: passes of 1×1, 1×1, 2×1, 2×2, 4×2, 4×4, 8×4 pixels.
    const rows = (w: number, h: number) => h * (1 + 4 * w);
    expect(pngDataBytes(header(8, 8, 6, 8, true))).toBe(rows(1, 1) + rows(1, 1) + rows(2, 1) + rows(2, 2) + rows(4, 2) + rows(4, 4) + rows(8, 4));
  });
});

describe("JPEG scan bombs: markers are read as libjpeg reads them", () => {
  it("counts scans by walking segments (stuffed bytes and restarts are data)", () => {
    expect(readJpegWork(jpegDeclaring()).scans).toBe(1);
    expect(readJpegWork(jpegWithScans(150)).scans).toBe(150);
  });

  it("refuses more than 100 scans (413) and scans that visit more than 32× the image's blocks (413)", async () => {
    await expectRejection(() => decodeImage(jpegWithScans(150), { maxPixels: 1e6 }), "payload_too_large", /150 scans, more than the 100/);
    await expectRejection(() => decodeImage(jpegWithScans(40), { maxPixels: 1e6 }), "payload_too_large", /visit \d+ blocks, more than 32 ×/);
    const progressive = new Uint8Array(readFileSync(join(SHARED, "golden-jpeg/photo-progressive-q75.jpg")));
    const work = readJpegWork(progressive);
    expect(work.scans).toBeGreaterThan(5); // libjpeg's progressive script, as Pillow writes it
    expect(work.scanBlocks).toBeLessThan(8 * work.frameBlocks);
    expect(await decodeImage(progressive, { maxPixels: 1e6 })).toMatchObject({ width: 500, height: 333 });
  });

  it("a DRI that declares more than its 4 bytes cannot hide scans: it is refused, as libjpeg refuses it", async () => {
    // Before: countJpegScans skipped the DRI's declared 0xFFFF bytes (and the scans inside), jpeg-js read 4.
    const hidden = jpegWithHiddenScans(4000);
    expect(hidden.length).toBeGreaterThan(65_535);
    await expectRejection(() => decodeImage(hidden, { maxPixels: 1e6 }), "invalid_request", /restart interval segment \(DRI\) declares 65535 bytes, not 4/);
  });

  it("refuses markers libjpeg stops on: a second SOI or SOF, SOS before SOF, an unknown marker, a scan of an unknown component", () => {
    const base = jpegDeclaring();
    const sof = base.findIndex((b, i) => b === 0xff && base[i + 1] === 0xc0);
    const sos = base.findIndex((b, i) => b === 0xff && base[i + 1] === 0xda);
    const cases: [string, Uint8Array, RegExp][] = [
      ["second SOI", concatBytes(base.subarray(0, 2), Uint8Array.of(0xff, 0xd8), base.subarray(2)), /second SOI/],
      ["second SOF", concatBytes(base.subarray(0, sos), base.subarray(sof, sof + 2 + ((base[sof + 2] << 8) | base[sof + 3])), base.subarray(sos)), /second frame header/],
      ["unknown marker", concatBytes(base.subarray(0, sos), Uint8Array.of(0xff, 0x05, 0, 4, 0, 0), base.subarray(sos)), /unknown marker 0x05/],
      ["SOS before SOF", concatBytes(base.subarray(0, 2), base.subarray(sos)), /before the frame header/],
    ];
    const badComponent = new Uint8Array(base);
    badComponent[sos + 5] = 0x77; // first component id named by the scan
    cases.push(["unknown component", badComponent, /names component 119/]);
    for (const [name, bytes, message] of cases) expect(() => readJpegWork(bytes), name).toThrow(message);
  });
});
