/** The vision worker's `POST /v1/images` through `app.request`, with a fake engine and a Map-backed KV. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createHarness, evalImage } from "./support/harness.ts";
import type { FakeEngine } from "./support/fake-engine.ts";

const PNG = evalImage("img_001_160x120.png");
const PILLOW = JSON.parse(readFileSync(new URL("../fixtures/images/pillow-webp-gif.json", import.meta.url), "utf8")) as Record<"webp" | "gif", Record<string, string>[]>;
const fixture = (kind: "webp" | "gif", name: string) => new Uint8Array(Buffer.from(PILLOW[kind].find((c) => c.name === name)![kind], "base64"));

const upload = (app: { request: (p: string, i: RequestInit) => Response | Promise<Response> }, body: BodyInit, type?: string) =>
  Promise.resolve(app.request("/v1/images", { method: "POST", body, headers: type ? { "content-type": type } : {} }));

describe("POST /v1/images", () => {
  it("encodes once: the same bytes again are cached, not re-encoded", async () => {
    const h = await createHarness();
    const first = await upload(h.visionApp, PNG, "image/png");
    expect(first.status).toBe(201);
    const a = await first.json<any>();
    expect(a).toEqual({ image_id: expect.stringMatching(/^img_[0-9a-f]{64}$/), cached: false, model: "paligemma-shapes", tokens: 36 });
    const second = await upload(h.visionApp, PNG, "image/png");
    expect(second.status).toBe(200);
    expect(await second.json<any>()).toEqual({ ...a, cached: true });
    expect((h.engine as FakeEngine).calls.encode).toBe(1);
    const header = JSON.parse(h.kv.values.get(`soft/${a.image_id}`)!.value as string);
    expect(header).toMatchObject({ model: "paligemma-shapes", dtype: "float32", scaling: "projector_output", tokens: 36, dim: 192, chunks: 1 });
    expect(header.preprocess).toMatch(/^p1-[0-9a-f]{16}$/);
  });

  it("accepts multipart uploads (part `image` or `file`)", async () => {
    const h = await createHarness();
    for (const field of ["image", "file"]) {
      const form = new FormData();
      form.set(field, new Blob([PNG], { type: "image/png" }), "shapes.png");
      const res = await upload(h.visionApp, form);
      expect(res.status).toBeLessThan(300);
      expect((await res.json<any>()).tokens).toBe(36);
    }
  });

  it("takes WebP and GIF (raw and multipart), refuses BMP with 415 naming the accepted formats", async () => {
    const h = await createHarness();
    for (const [bytes, type] of [[fixture("webp", "lossy-alpha"), "image/webp"], [fixture("webp", "animated-pillow"), "image/webp"], [fixture("gif", "animated-pillow"), "image/gif"]] as const) {
      const res = await upload(h.visionApp, bytes, type);
      expect(res.status, type).toBe(201);
      expect((await res.json<any>()).tokens).toBe(36);
    }
    const form = new FormData();
    form.set("image", new Blob([fixture("gif", "pillow-interlaced-transparent")], { type: "image/gif" }), "a.gif");
    expect((await upload(h.visionApp, form)).status).toBe(201);
    expect((h.engine as FakeEngine).calls.encode).toBe(4);
    const bmp = Uint8Array.from("BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x04\0\0\0\x04\0\0\0\x01\0\x18\0", (c) => c.charCodeAt(0));
    const refused = await upload(h.visionApp, bmp, "image/png");
    expect(refused.status).toBe(415);
    expect((await refused.json<any>()).error.message).toBe("BMP images are not supported; send PNG, JPEG, WebP or GIF");
  });

  it("is also reachable through the decoder (pass-through)", async () => {
    const h = await createHarness();
    const res = await upload(h.app, PNG, "image/png");
    expect(res.status).toBe(201);
  });

  it("rejects bad uploads with 4xx JSON", async () => {
    const h = await createHarness();
    const err = async (res: Response) => ({ status: res.status, ...((await res.json<any>()) as { error: object }).error });
    expect(await err(await upload(h.visionApp, "hello", "text/plain"))).toMatchObject({ status: 415, param: "content-type" });
    expect(await err(await upload(h.visionApp, new Uint8Array(0), "image/png"))).toMatchObject({ status: 400, param: "image" });
    expect(await err(await upload(h.visionApp, new Uint8Array([1, 2, 3, 4]), "image/png"))).toMatchObject({ status: 415 });
    expect(await err(await upload(h.visionApp, PNG.subarray(0, 100), "image/png"))).toMatchObject({ status: 400, type: "invalid_request" });
    const big = new Uint8Array(11 * 1024 * 1024);
    expect(await err(await upload(h.visionApp, big, "image/png"))).toMatchObject({ status: 413 });
    expect(await err(await upload(h.visionApp, new FormData(), undefined))).toMatchObject({ status: 400 });
    expect((await h.visionApp.request("/v1/nothing")).status).toBe(404);
    expect((h.engine as FakeEngine).calls.encode).toBe(0);
  });
});
