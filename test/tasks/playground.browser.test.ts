/**
 * The playground in a real browser: headless Debian Chromium (playwright-core, executablePath) against the
 * dev server. Loads a shapes eval image, runs "detect", and checks that the text streams in, that the drawn
 * boxes are the API's detections (SVG attributes and on-screen geometry over the image), the timings, an API
 * error, and a cache hit. Then, against the mask test server (segment prompts scripted with the VQ-VAE golden's
 * codes, the decoder converted into the model), a segment run paints exactly the API's masks into the canvas.
 * Saves screenshots to test-artifacts/.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeCocoRle } from "../../shared/masks/index.ts";
import type { Detection, Segment } from "../../shared/tasks/index.ts";
import { startSegmentServer } from "../serving/support/segment-server.ts";
import { loadShapesEval, SHAPES_EVAL_DIR } from "./shapes-eval.ts";
import { artifactDir, launchBrowser, startServer, type ServerUnderTest } from "./support.ts";

const IMAGE = "img_014_200x200.png";
const OBJECTS = ["triangle", "square", "circle"];
const PREFIX = "detect triangle ; square ; circle";

let server: ServerUnderTest;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on("pageerror", (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    // The 400 of the error test is expected; anything else (a CSP violation, a 404) is not.
    if (msg.type() === "error" && !/status of 400/.test(msg.text())) pageErrors.push(`console: ${msg.text()}`);
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** The API's own non-streaming answer for the same image and task (greedy, so deterministic). */
async function apiDetect(): Promise<{ text: string; detections?: Detection[] }> {
  const bytes = readFileSync(join(SHAPES_EVAL_DIR, IMAGE));
  const upload = await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: bytes });
  const { image_id } = (await upload.json()) as { image_id: string };
  const body = { image_id, task: "detect", objects: OBJECTS, max_tokens: 24, temperature: 0, stream: false };
  const res = await fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json as { text: string; detections?: Detection[] };
}

async function loadImage(): Promise<void> {
  await page.setInputFiles("#image-file", join(SHAPES_EVAL_DIR, IMAGE));
  await page.waitForSelector('#status[data-state="ready"]', { timeout: 10_000 });
}

/** Clicks Run and waits for the run to end; returns the final status state. */
async function run(): Promise<string> {
  await page.click("#run");
  await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 60_000 });
  return (await page.getAttribute("#status", "data-state")) ?? "";
}

describe("the playground page (GET /) in headless Chromium", () => {
  it("is served with a strict CSP and loads without errors", async () => {
    const response = await page.goto(`${server.url}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()["content-type"]).toMatch(/^text\/html/);
    expect(response?.headers()["content-security-policy"]).toMatch(/script-src 'sha256-/);
    await page.waitForSelector('html[data-ready="true"]', { timeout: 10_000 });
    expect(await page.title()).toBe("PaliGemma playground");
  });

  it("streams a detect answer and draws exactly the API's detections over the image", async () => {
    await loadImage();
    await page.selectOption("#task", "detect");
    await page.fill("#objects", OBJECTS.join(", "));
    await page.fill("#max-tokens", "24");
    // Record every text the answer box shows while tokens arrive (each mutation's new text node, so texts set
    // one after another within one network chunk are all seen).
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver((records) => {
        for (const r of records) r.addedNodes.forEach((n) => seen.push(n.textContent ?? ""));
      }).observe(document.getElementById("output")!, { childList: true });
    });
    expect(await run(), (await page.textContent("#status")) ?? "").toBe("done");

    const api = await apiDetect();
    const reference = (await loadShapesEval()).set.cases.find((c) => c.image === IMAGE && c.prefix === PREFIX)!;
    expect(api.text).toBe(reference.answer); // same greedy answer as transformers
    const text = await page.textContent("#output");
    expect(text).toBe(api.text);
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const partial = seen.filter((s) => s.length > 0 && s.length < api.text.length);
    expect(partial.length, "intermediate texts while streaming").toBeGreaterThan(1);
    for (const s of partial) expect(api.text.startsWith(s)).toBe(true);
    expect(Number(await page.getAttribute("#output", "data-tokens"))).toBeGreaterThan(partial.length);

    expect(api.detections, "the API's detections field").toBeDefined();
    const detections = api.detections!;
    expect(detections.length).toBe(3);
    const drawn = await page.$$eval("#boxes rect", (rects) =>
      rects.map((r) => ({
        label: r.getAttribute("data-label"),
        x: Number(r.getAttribute("x")),
        y: Number(r.getAttribute("y")),
        width: Number(r.getAttribute("width")),
        height: Number(r.getAttribute("height")),
      })),
    );
    expect(drawn).toEqual(detections.map((d) => ({ label: d.label, x: d.box.x1, y: d.box.y1, width: d.box.x2 - d.box.x1, height: d.box.y2 - d.box.y1 })));

    // On screen: each box, mapped back through the displayed image's scale, lands on the API's pixel box.
    const geometry = await page.evaluate(() => {
      const img = document.getElementById("preview") as HTMLImageElement;
      const frame = img.getBoundingClientRect();
      const sx = img.naturalWidth / frame.width;
      const sy = img.naturalHeight / frame.height;
      return Array.from(document.querySelectorAll("#boxes rect")).map((rect) => {
        const r = rect.getBoundingClientRect();
        return { x1: (r.left - frame.left) * sx, y1: (r.top - frame.top) * sy, x2: (r.right - frame.left) * sx, y2: (r.bottom - frame.top) * sy };
      });
    });
    geometry.forEach((g, i) => {
      for (const k of ["x1", "y1", "x2", "y2"] as const) expect(Math.abs(g[k] - detections[i].box[k]), `box ${i} ${k}`).toBeLessThan(0.5);
    });
    expect(await page.$$eval("#tags .tag", (tags) => tags.map((t) => t.textContent))).toEqual(detections.map((d) => d.label));
    expect(await page.locator("#objects-list li").count()).toBe(3);
    for (const id of ["#t-ttft", "#t-tps", "#t-total"]) expect(await page.textContent(id)).toMatch(/\d+(\.\d+)? (ms|tokens\/s)/);
    expect(await page.textContent("#t-tokens")).toMatch(/^\d+ prompt, 20 generated \(eos\)$/);
    await page.screenshot({ path: join(artifactDir(), "playground-detect.png"), fullPage: true });
  });

  it("shows the API's 4xx message for an empty object list", async () => {
    await page.fill("#objects", " , ");
    expect(await run()).toBe("error");
    expect(await page.textContent("#status")).toMatch(/objects.*\(HTTP 400\)/);
  });

  it("reports a soft-token cache hit when the same image is asked again", async () => {
    await page.selectOption("#task", "caption");
    expect(await run()).toBe("done");
    expect(await page.textContent("#t-cache")).toMatch(/^image soft tokens hit/);
    expect(await page.locator("#boxes rect").count()).toBe(0);
    await page.screenshot({ path: join(artifactDir(), "playground-caption.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});

describe("the playground draws segmentation masks", () => {
  let segServer: ServerUnderTest;
  beforeAll(async () => {
    segServer = await startSegmentServer();
  }, 240_000);
  afterAll(async () => {
    await segServer?.stop();
  });

  it("paints each segment's mask (the API's COCO RLE) over the image, in its box colour", async () => {
    await page.goto(`${segServer.url}/`);
    await page.waitForSelector('html[data-ready="true"]', { timeout: 10_000 });
    await loadImage();
    await page.selectOption("#task", "segment");
    await page.fill("#objects", "circle, triangle");
    await page.fill("#max-tokens", "64");
    expect(await run(), (await page.textContent("#status")) ?? "").toBe("done");

    // The API's own answer for the same image and prompt (the script is deterministic).
    const bytes = readFileSync(join(SHAPES_EVAL_DIR, IMAGE));
    const upload = await fetch(`${segServer.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: bytes });
    const { image_id } = (await upload.json()) as { image_id: string };
    const body = { image_id, task: "segment", objects: ["circle", "triangle"], max_tokens: 64, stream: false };
    const res = await fetch(`${segServer.url}/v1/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const { segments } = (await res.json()) as { segments: Segment[] };
    expect(segments.length).toBe(2);
    const masks = segments.map((s) => decodeCocoRle(s.mask!)); // [200, 200] each

    const canvas = await page.evaluate(() => {
      const c = document.getElementById("masks") as HTMLCanvasElement;
      const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      const alpha: number[] = [];
      const red: number[] = [];
      for (let i = 0; i < data.length; i += 4) {
        alpha.push(data[i + 3]);
        red.push(data[i]);
      }
      return { width: c.width, height: c.height, drawn: c.dataset.masks, alpha, red };
    });
    expect([canvas.width, canvas.height, canvas.drawn]).toEqual([200, 200, "2"]);
    let union = 0;
    let mismatched = 0;
    for (let p = 0; p < 200 * 200; p++) {
      const inside = masks[0][p] === 1 || masks[1][p] === 1;
      union += inside ? 1 : 0;
      if ((canvas.alpha[p] > 0) !== inside) mismatched++;
    }
    expect(mismatched, "canvas pixels painted differently from the API's masks").toBe(0);
    expect(union).toBeGreaterThan(1000);
    // A pixel only the first mask (label "circle", colour c0 = rgb(230, 25, 75)) covers is painted in its colour
    // (±2: the canvas keeps premultiplied alpha, so a colour read back at alpha 115 may move by a unit or two).
    const only0 = masks[0].findIndex((v, p) => v === 1 && masks[1][p] === 0);
    expect(Math.abs(canvas.red[only0] - 230)).toBeLessThanOrEqual(2);
    // The canvas lies exactly over the image.
    const frames = await page.evaluate(() =>
      ["preview", "masks"].map((id) => {
        const r = document.getElementById(id)!.getBoundingClientRect();
        return [r.left, r.top, r.width, r.height];
      }),
    );
    expect(frames[1]).toEqual(frames[0]);
    expect(await page.textContent("#objects-list")).toMatch(/circle: .*\(segment, mask of \d+ px\)/);
    await page.screenshot({ path: join(artifactDir(), "playground-segment.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
