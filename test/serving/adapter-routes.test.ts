/**
 * LoRA adapters through the decoder's routes (`app.request`, the real session logic and the real kernel engine
 * over the committed model, which carries `shapes-lora-a`): chosen by `model` "<base>:<name>" on both APIs or
 * `adapter` on the native one, each answer equal to the merged model's; one session alternating between adapters
 * and none; the prefix cache and the soft tokens keyed by adapter; unknown adapters a 404 naming them; the
 * session info reporting the factor bytes held.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/node-runtime.ts";
import { convert } from "../../converter/convert.ts";
import { KERNEL_BACKENDS } from "../../shared/engine/engine.ts";
import { SHARED } from "../helpers/golden.ts";
import { EVAL_PROMPTS } from "../lora/support.ts";
import { base64, createHarness, evalImage, MODEL_DIR, post, type Harness } from "./support/harness.ts";

const work = mkdtempSync(join(tmpdir(), "pg-lora-routes-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let h: Harness;
let ref: Harness; // the merged model, served as the base
let plain: Harness; // the base without adapters: its answers
beforeAll(async () => {
  await convert(join(SHARED, "golden-lora/shapes-lora-a/merged"), join(work, "merged"), { dtype: "fp32", id: "paligemma-shapes" });
  h = await createHarness({ engine: await loadModel(MODEL_DIR, KERNEL_BACKENDS) });
  ref = await createHarness({ engine: await loadModel(join(work, "merged"), KERNEL_BACKENDS) });
  plain = await createHarness({ engine: await loadModel(MODEL_DIR, KERNEL_BACKENDS) });
}, 60_000);

const native = async (app: Harness["app"], body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const res = await post(app, "/v1/generate", { stream: false, max_tokens: 24, ...body }, headers);
  return { status: res.status, body: await res.json<any>() };
};

describe("an adapter chosen per request", () => {
  it("by model on the native API and the OpenAI one, and by adapter: the merged model's answers", async () => {
    let differ = 0;
    for (const [image, prompt] of EVAL_PROMPTS) {
      const img = base64(evalImage(image));
      const want = (await native(ref.app, { image: img, prompt })).body;
      const byModel = await native(h.app, { image: img, prompt, model: "paligemma-shapes:shapes-lora-a" });
      expect(byModel.status).toBe(200);
      expect([byModel.body.ids, byModel.body.text, byModel.body.model], `${image}: ${prompt}`).toEqual([want.ids, want.text, "paligemma-shapes:shapes-lora-a"]);
      expect((await native(h.app, { image: img, prompt, adapter: "shapes-lora-a" })).body.ids).toEqual(want.ids);
      const content = [{ type: "image_url", image_url: { url: `data:image/png;base64,${img}` } }, { type: "text", text: prompt }];
      const chat = await (await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes:shapes-lora-a", messages: [{ role: "user", content }], max_tokens: 24 })).json<any>();
      expect([chat.model, chat.choices[0].message.content]).toEqual(["paligemma-shapes:shapes-lora-a", want.text]);
      if ((await native(plain.app, { image: img, prompt })).body.text !== want.text) differ++;
    }
    expect(differ, "the adapter changes some answers").toBeGreaterThan(0);
  });

  it("one session alternating between the adapter and the base gives each model's answer; the prefix cache is per adapter", async () => {
    const img = base64(evalImage("img_001_160x120.png"));
    const prompt = "detect circle";
    const want = { adapter: (await native(ref.app, { image: img, prompt })).body.ids, base: (await native(plain.app, { image: img, prompt })).body.ids };
    expect(want.adapter).not.toEqual(want.base);
    const session = { "x-session-id": "alternating" };
    const seen: [string, unknown, string][] = [];
    for (const which of ["base", "adapter", "base", "adapter", "adapter"] as const) {
      const r = await native(h.app, { image: img, prompt, ...(which === "adapter" ? { model: "paligemma-shapes:shapes-lora-a" } : {}) }, session);
      expect(r.body.ids, which).toEqual(want[which]);
      seen.push([which, r.body.usage.prefix_cache.kv, r.body.model]);
    }
    expect(seen).toEqual([
      ["base", "miss", "paligemma-shapes"],
      ["adapter", "miss", "paligemma-shapes:shapes-lora-a"],
      ["base", "miss", "paligemma-shapes"],
      ["adapter", "miss", "paligemma-shapes:shapes-lora-a"],
      ["adapter", "hit", "paligemma-shapes:shapes-lora-a"],
    ]);
    const info = await (await h.app.request("/v1/sessions/alternating")).json<any>();
    expect(info.memory.adapter).toBe("shapes-lora-a");
    expect(info.record.model).toBe("paligemma-shapes:shapes-lora-a");
    expect(info.engine.adapters).toEqual([{ name: "shapes-lora-a", bytes: 98304 }, { name: "shapes-lora-a", bytes: 442368 }]); // vision, then decoder and head
    expect(info.engine.adapterBytes).toBe(540672); // its factors: no copy of the base
  });

  it("an image uploaded for the base is refused for an adapter that changes the vision tower; uploaded with ?model= it is used", async () => {
    const bytes = evalImage("img_000_96x96.png");
    const upload = (q: string) => h.app.request(`/v1/images${q}`, { method: "POST", headers: { "content-type": "image/png" }, body: bytes });
    const forBase = await (await upload("")).json<any>();
    const refused = await native(h.app, { image_id: forBase.image_id, prompt: "caption en", model: "paligemma-shapes:shapes-lora-a" });
    expect(refused.status).toBe(422);
    expect(refused.body.error.message).toMatch(/was encoded for model paligemma-shapes, not paligemma-shapes:shapes-lora-a \(an adapter that changes the vision tower needs its own soft tokens/);
    const forAdapter = await (await upload("?model=paligemma-shapes:shapes-lora-a")).json<any>();
    expect(forAdapter.model).toBe("paligemma-shapes:shapes-lora-a");
    expect(forAdapter.image_id).not.toBe(forBase.image_id);
    const got = await native(h.app, { image_id: forAdapter.image_id, prompt: "caption en", model: "paligemma-shapes:shapes-lora-a" });
    expect(got.body.ids).toEqual((await native(ref.app, { image: base64(bytes), prompt: "caption en" })).body.ids);
  });
});

describe("refusals", () => {
  it("an unknown adapter is a 404 naming it on both APIs; model and adapter that disagree are a 400", async () => {
    const img = base64(evalImage("img_000_96x96.png"));
    const a = await native(h.app, { image: img, prompt: "caption en", model: "paligemma-shapes:nope" });
    expect([a.status, a.body.error.param, a.body.error.message]).toEqual([404, "model", 'adapter "nope" of model paligemma-shapes is not served here; GET /v1/models lists "paligemma-shapes", "paligemma-shapes:shapes-lora-a"']);
    const b = await native(h.app, { image: img, prompt: "caption en", adapter: "nope" });
    expect([b.status, b.body.error.param]).toEqual([404, "adapter"]);
    const content = [{ type: "image_url", image_url: { url: `data:image/png;base64,${img}` } }, { type: "text", text: "caption en" }];
    const chat = await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes:nope", messages: [{ role: "user", content }] });
    expect([chat.status, (await chat.json<any>()).error]).toEqual([404, { message: expect.stringContaining('adapter "nope"'), type: "not_found_error", param: "model", code: "model_not_found" }]);
    const c = await native(h.app, { image: img, prompt: "caption en", model: "paligemma-shapes:shapes-lora-a", adapter: "other" });
    expect([c.status, c.body.error.param]).toEqual([400, "adapter"]);
  });
});
