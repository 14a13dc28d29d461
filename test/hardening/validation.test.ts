/**
 * Every bad input refused cleanly, through the real decoder app (`app.request`, fake engine): the catalogue of
 * malformed requests (support.ts) gets its exact 4xx and one JSON error shape; configured limits are honoured;
 * no bad input reaches the model.
 */
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../shared/image/index.ts";
import { countJpegScans } from "../../shared/image/jpeg-scans.ts";
import { assertNoPngBomb, pngRawSize } from "../../shared/image/png-bomb.ts";
import { InputError } from "../../shared/errors.ts";
import type { FakeEngine } from "../serving/support/fake-engine.ts";
import { base64, createHarness, post } from "../serving/support/harness.ts";
import { badRequests, expectRefused, GOOD_PNG, iccBomb, jpegDeclaring, jpegWithScans, png, pngBomb, requestInit } from "./support.ts";

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

describe("PNG decompression bombs", () => {
  it("are refused before fast-png inflates them, in constant memory", async () => {
    const bombs = [pngBomb(), iccBomb()];
    expect(bombs.map((b) => b.length < 200_000)).toEqual([true, true]);
    const before = process.memoryUsage().arrayBuffers;
    for (const bomb of bombs) {
      await expect(assertNoPngBomb(bomb)).rejects.toBeInstanceOf(InputError);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });

  it("let every eval image and ordinary PNGs through", async () => {
    await assertNoPngBomb(GOOD_PNG);
    const raw = new Uint8Array(30 * (1 + 40 * 3)).map((_, i) => (i % 121 === 0 ? 0 : 0x80)); // filter 0 per row
    const plain = png(40, 30, raw);
    await assertNoPngBomb(plain);
    expect(decodeImage(plain, { maxPixels: 1e6 })).toMatchObject({ width: 40, height: 30 });
  });

  it("know the inflated size of plain and interlaced images", () => {
    expect(pngRawSize(40, 30, 2, 8, false)).toBe(30 * (1 + 120));
    expect(pngRawSize(1, 1, 0, 1, false)).toBe(2);
    // Adam7 on 8×8 RGBA 8-bit: passes of 1×1, 1×1, 2×1, 2×2, 4×2, 4×4, 8×4 pixels.
    const rows = (w: number, h: number) => h * (1 + 4 * w);
    expect(pngRawSize(8, 8, 6, 8, true)).toBe(rows(1, 1) + rows(1, 1) + rows(2, 1) + rows(2, 2) + rows(4, 2) + rows(4, 4) + rows(8, 4));
  });
});

describe("JPEG scan bombs", () => {
  it("counts scans by walking segments (stuffed bytes and restarts are data)", () => {
    expect(countJpegScans(jpegDeclaring())).toBe(1);
    expect(countJpegScans(jpegWithScans(150))).toBe(150);
    expect(countJpegScans(Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2, 0xff, 0x00, 0xff, 0xd3, 1, 0xff, 0xd9))).toBe(1);
  });
});
