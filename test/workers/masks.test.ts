/**
 * Segmentation masks inside workerd: the npz reader (DecompressionStream "deflate-raw") and the VQ-VAE decoder
 * reproduce ../shared/golden-vqvae/masks.bin within 1e-5, and a session Durable Object returns each segment's
 * mask as COCO RLE over the original image (the fake engine answers with the golden's codes).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { decodeCocoRle, decodeMask, placeMask, vaeFromNpz } from "../../shared/masks/index.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import { SEGMENT_ANSWER } from "./segment-answer.ts";
import { collect, fromBase64, greedy } from "./support.ts";

const bytes = fromBase64(env.VQVAE_MASKS);
const golden = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const cases = JSON.parse(env.VQVAE_CODES).cases as { name: string; codes: number[] }[];
const goldenMask = (i: number) => golden.subarray(i * 4096, (i + 1) * 4096);

describe("the VQ-VAE mask decoder in workerd", () => {
  it("reads vae-random.npz and reproduces masks.bin for the three code sets", async () => {
    const weights = await vaeFromNpz(fromBase64(env.VQVAE_NPZ), "vae-random.npz");
    cases.forEach((c, i) => {
      const started = performance.now();
      const mask = decodeMask(weights, c.codes);
      const ms = performance.now() - started;
      let worst = 0;
      for (let j = 0; j < mask.length; j++) worst = Math.max(worst, Math.abs(mask[j] - goldenMask(i)[j]));
      expect(worst, c.name).toBeLessThanOrEqual(1e-5);
      console.log(`workerd decode ${c.name}: ${ms.toFixed(1)} ms`);
    });
  });
});

describe("SegmentSessionObject", () => {
  it("returns masks with the done event: the golden output placed in each box of a 200×150 image", async () => {
    const size = { width: 200, height: 150 };
    const store = new SoftTokenStore(env.SOFT_TOKENS, { ttlSeconds: 3600 });
    const ref = { imageSha256: "0".repeat(64), model: "paligemma-shapes", preprocess: "p1-test" };
    await store.put("img_segment", ref, { data: new Float32Array(36 * 192).fill(0.5), tokens: 36, dim: 192 }, "float32", size);
    const stub = env.SEGMENT_SESSIONS.get(env.SEGMENT_SESSIONS.idFromName("segment"));
    const req = { session: "segment", prompt: "segment circle ; triangle", imageId: "img_segment", sampling: greedy(64) };

    const withMasks = await collect(await stub.generate({ ...req, masks: true }));
    expect(withMasks.done.masks?.length).toBe(2);
    SEGMENT_ANSWER.objects.forEach((o, k) => {
      const [y1, x1, y2, x2] = o.locs.map((v) => v / 1024);
      const want = placeMask(goldenMask(SEGMENT_ANSWER.cases[k]), { x1, y1, x2, y2 }, size);
      const rle = withMasks.done.masks![k];
      expect(rle.size).toEqual([150, 200]);
      expect(decodeCocoRle(rle)).toEqual(want);
    });
    expect(withMasks.done.usage.timings.masks_ms).toBeGreaterThanOrEqual(0);

    const again = await collect(await stub.generate({ ...req, masks: true })); // the decoder is loaded once
    expect(again.done.masks).toEqual(withMasks.done.masks);
    const without = await collect(await stub.generate(req)); // OpenAI's route does not ask
    expect(without.done.text).toBe(withMasks.done.text);
    expect(without.done.masks).toBeUndefined();
  });
});
