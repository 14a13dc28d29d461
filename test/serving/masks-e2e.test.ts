/**
 * Masks end to end: `wrangler dev` with both workers (as `npm start`), the default model plus the golden's
 * VQ-VAE decoder converted into its folder with `convert-vae`, and segment prompts answered with the golden's
 * codes (support/segment-server.ts). Native answers carry each segment's COCO RLE over the uploaded image,
 * equal to the golden decoder output placed in its box; other prompts still get the real model's answers.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeCocoRle, placeMask } from "../../shared/masks/index.ts";
import type { Segment } from "../../shared/tasks/index.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { loadVqvaeGolden } from "../masks/support.ts";
import { SEGMENT_ANSWER } from "../workers/segment-answer.ts";
import type { DevServer } from "./support/dev-server.ts";
import { evalImage } from "./support/harness.ts";
import { segmentAnswerText } from "./support/segment-answer.ts";
import { startSegmentServer } from "./support/segment-server.ts";
import { readSse } from "./support/sse-client.ts";

const golden = loadVqvaeGolden();
const IMAGE = "img_003_77x133.png"; // 77 wide, 133 high
const SIZE = { width: 77, height: 133 };
const CASES: { image: string; prefix: string; answer: string }[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;

let server: DevServer;
beforeAll(async () => {
  server = await startSegmentServer();
}, 240_000);
afterAll(async () => {
  await server?.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function upload(): Promise<string> {
  const res = await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(IMAGE) });
  return ((await res.json()) as { image_id: string }).image_id;
}

function expectGoldenMasks(segments: Segment[]): void {
  expect(segments.map((s) => s.label)).toEqual(["circle", "triangle"]);
  segments.forEach((s, k) => {
    const [y1, x1, y2, x2] = SEGMENT_ANSWER.objects[k].locs.map((v) => v / 1024);
    const i = SEGMENT_ANSWER.cases[k];
    const want = placeMask(golden.masks.subarray(i * 4096, (i + 1) * 4096), { x1, y1, x2, y2 }, SIZE);
    expect(s.mask, JSON.stringify(s)).not.toBeNull();
    expect(s.mask!.size).toEqual([SIZE.height, SIZE.width]);
    expect(decodeCocoRle(s.mask!)).toEqual(want);
    expect(want.some((v) => v === 1)).toBe(true);
  });
}

describe("segment answers through npm start's server", () => {
  it("return masks (COCO RLE over the original image) in a non-streaming native answer", async () => {
    const res = await post("/v1/generate", { image_id: await upload(), task: "segment", objects: ["circle", "triangle"], stream: false });
    const body = (await res.json()) as { text: string; segments: Segment[]; usage: { timings: { masks_ms: number } } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.text).toBe(segmentAnswerText(SEGMENT_ANSWER.objects));
    expectGoldenMasks(body.segments);
    expect(body.usage.timings.masks_ms).toBeGreaterThan(0);
  });

  it("return the same masks in the streamed done event", async () => {
    const { events } = await readSse(await post("/v1/generate", { image_id: await upload(), prompt: "segment circle ; triangle" }));
    expect(events.at(-1)!.event).toBe("done");
    expectGoldenMasks(JSON.parse(events.at(-1)!.data).segments);
  });

  it("leave other prompts to the real model (its reference detect answer, no segments)", async () => {
    const want = CASES.find((c) => c.image === IMAGE && c.prefix.startsWith("detect"))!;
    const res = await post("/v1/generate", { image_id: await upload(), prompt: want.prefix, max_tokens: 24, stream: false });
    const body = (await res.json()) as { text: string; segments: Segment[] };
    expect(body.text).toBe(want.answer);
    expect(body.segments).toEqual([]);
  });
});
