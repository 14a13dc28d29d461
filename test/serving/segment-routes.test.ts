/**
 * Segmentation masks through the decoder's routes (`app.request`, the real session logic, a fake engine that
 * answers with the VQ-VAE golden's codes): native answers carry each segment's COCO RLE over the original
 * image, equal to the golden decoder output placed in its box; without a decoder the mask stays null with its
 * reason; the OpenAI route never decodes; the decoder is loaded only by an answer with segments.
 */
import { describe, expect, it } from "vitest";
import { decodeCocoRle, maskDecoder, placeMask, vaeFromNpz, type MaskDecoder } from "../../shared/masks/index.ts";
import { MASK_UNAVAILABLE, type Segment } from "../../shared/tasks/index.ts";
import { loadVqvaeGolden } from "../masks/support.ts";
import { base64, createHarness, evalImage, post, shapesTokenizer } from "./support/harness.ts";
import { segmentAnswerIds, segmentAnswerText, type ScriptedObject } from "./support/segment-answer.ts";
import { readSse } from "./support/sse-client.ts";

const golden = loadVqvaeGolden();
const IMAGE = "img_001_160x120.png"; // 160 wide, 120 high
const SIZE = { width: 160, height: 120 };
const OBJECTS: ScriptedObject[] = [
  { locs: [102, 61, 901, 990], codes: golden.cases[0].codes, label: "circle" },
  { locs: [10, 20, 300, 400], label: "square" },
  { locs: [340, 512, 520, 610], codes: golden.cases[2].codes, label: "triangle" },
];
const tokenizer = shapesTokenizer();
const answer = () => segmentAnswerIds(tokenizer, OBJECTS);
const decoder = vaeFromNpz(golden.npz, "vae-random.npz").then(maskDecoder);

/** A decoder that counts its loads. */
function counting(): { load: () => Promise<MaskDecoder | null>; loads: () => number } {
  let n = 0;
  return { load: () => (n++, decoder), loads: () => n };
}

/** The mask the API must give for golden case `i` in `locs`'s box. */
function expectedMask(i: number, locs: readonly number[]): Uint8Array {
  const [y1, x1, y2, x2] = locs.map((v) => v / 1024);
  return placeMask(golden.masks.subarray(i * 4096, (i + 1) * 4096), { x1, y1, x2, y2 }, SIZE);
}

function expectGoldenMasks(segments: Segment[]): void {
  expect(segments.map((s) => s.label)).toEqual(["circle", "triangle"]);
  for (const [s, i, o] of [[segments[0], 0, OBJECTS[0]], [segments[1], 2, OBJECTS[2]]] as const) {
    expect(s.mask).not.toBeNull();
    expect(s.mask!.size).toEqual([120, 160]);
    expect(s).not.toHaveProperty("mask_reason");
    const mask = decodeCocoRle(s.mask!);
    expect(mask).toEqual(expectedMask(i, o.locs));
    expect(mask.some((v) => v === 1)).toBe(true);
  }
}

describe("segment answers with a VQ-VAE decoder", () => {
  it("non-streaming: each segment's mask is the golden decoder output in its box, as COCO RLE over the image", async () => {
    const masks = counting();
    const { app } = await createHarness({ fake: { answer }, masks: masks.load });
    const res = await post(app, "/v1/generate", { image: base64(evalImage(IMAGE)), task: "segment", objects: ["circle", "triangle"], stream: false });
    const body = await res.json<any>();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.text).toBe(segmentAnswerText(OBJECTS));
    expect(body.detections.map((d: { label: string }) => d.label)).toEqual(["square"]);
    expectGoldenMasks(body.segments);
    expect(body.usage.timings.masks_ms).toBeGreaterThanOrEqual(0);
    expect(body.usage.timings.total_ms).toBeGreaterThanOrEqual(body.usage.timings.masks_ms);
    expect(masks.loads()).toBe(1);
  });

  it("streaming: the done event carries the same masks", async () => {
    const { app } = await createHarness({ fake: { answer }, masks: counting().load });
    const res = await post(app, "/v1/generate", { image: base64(evalImage(IMAGE)), prompt: "segment circle ; triangle" });
    const { events } = await readSse(res);
    const done = JSON.parse(events.at(-1)!.data);
    expect(events.at(-1)!.event).toBe("done");
    expectGoldenMasks(done.segments);
    expect(done).not.toHaveProperty("masks"); // the session's list is folded into segments, not passed through
  });

  it("the OpenAI route returns the raw text and decodes nothing; a detect answer loads no decoder", async () => {
    const masks = counting();
    const { app } = await createHarness({ fake: { answer }, masks: masks.load });
    const url = `data:image/png;base64,${base64(evalImage(IMAGE))}`;
    const chat = await post(app, "/v1/chat/completions", { model: "paligemma-shapes", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "segment circle" }] }] });
    const completion = await chat.json<any>();
    expect(chat.status, JSON.stringify(completion)).toBe(200);
    expect(completion.choices[0].message.content).toBe(segmentAnswerText(OBJECTS));
    expect(masks.loads()).toBe(0);

    const detectOnly = createHarness({ fake: { answer: () => segmentAnswerIds(tokenizer, [OBJECTS[1]]) }, masks: masks.load });
    const res = await post((await detectOnly).app, "/v1/generate", { image: base64(evalImage(IMAGE)), task: "detect", objects: ["square"], stream: false });
    expect((await res.json<any>()).segments).toEqual([]);
    expect(masks.loads()).toBe(0);
  });
});

describe("segment answers without a decoder", () => {
  it("keep mask null with the reason, and the 16 codes", async () => {
    for (const masks of [undefined, async () => null]) {
      const { app } = await createHarness({ fake: { answer }, masks });
      const body = await (await post(app, "/v1/generate", { image: base64(evalImage(IMAGE)), task: "segment", objects: ["circle"], stream: false })).json<any>();
      expect(body.segments.map((s: Segment) => [s.mask, s.mask_reason, s.codes])).toEqual([
        [null, MASK_UNAVAILABLE, golden.cases[0].codes],
        [null, MASK_UNAVAILABLE, golden.cases[2].codes],
      ]);
      expect(body.usage.timings).not.toHaveProperty("masks_ms");
    }
  });

  it("a decoder that fails to load ends the stream with a server error frame", async () => {
    const { app } = await createHarness({ fake: { answer }, masks: async () => Promise.reject(new Error("vae-decoder.bin fails its sha256 check")) });
    const { events } = await readSse(await post(app, "/v1/generate", { image: base64(evalImage(IMAGE)), task: "segment", objects: ["circle"] }));
    expect(events.at(-1)!.event).toBe("error");
    expect(JSON.parse(events.at(-1)!.data).error).toMatchObject({ type: "server_error" });
  });
});
