/**
 * End to end: the real dev server (`wrangler dev` with both workers, miniflare's KV / Durable Objects / assets)
 * with the committed default model, driven over HTTP by the official `openai` client and by fetch +
 * eventsource-parser. The reference answers of ../shared/models/paligemma-shapes/eval must come back exactly.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../../shared/image/index.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";
import { losslessWebp } from "../helpers/webp-encode.ts";
import { startDevServer, type DevServer } from "./support/dev-server.ts";
import { base64, evalImage } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

interface EvalCase {
  readonly image: string;
  readonly prefix: string;
  readonly answer: string;
  readonly answer_ids: readonly number[];
}

const CASES: EvalCase[] = JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")).cases;
const CAPTION = CASES.find((c) => c.image === "img_001_160x120.png" && c.prefix === "caption en")!;

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer();
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

const uploadImage = async (name: string) =>
  (await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/png" }, body: evalImage(name) })).json<any>();

describe("npm start's server", () => {
  it("streams a chat completion with an eval image: the reference answer, exact OpenAI framing", async () => {
    const openai = new OpenAI({ apiKey: "unused", baseURL: `${server.url}/v1`, maxRetries: 0 });
    const url = `data:image/png;base64,${base64(evalImage(CAPTION.image))}`;
    const messages = [{ role: "user" as const, content: [{ type: "image_url" as const, image_url: { url } }, { type: "text" as const, text: CAPTION.prefix }] }];
    const stream = await openai.chat.completions.create({ model: "paligemma-shapes", messages, stream: true, max_tokens: 24 });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe(CAPTION.answer);

    const res = await postJson("/v1/chat/completions", { model: "paligemma-shapes", messages, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const { raw, events } = await readSse(res);
    expect(raw).toMatch(/^(data: \{[^\n]*\}\n\n)+data: \[DONE\]\n\n$/);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(CAPTION.answer);
    expect(chunks.at(-2).choices[0].finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: CAPTION.answer_ids.length } });
  });

  it("answers a lossless WebP of an eval image with its reference answer, and an animated GIF upload", async () => {
    const webp = await losslessWebp(await decodeImage(evalImage(CAPTION.image), { maxPixels: 1 << 20 }));
    const openai = new OpenAI({ apiKey: "unused", baseURL: `${server.url}/v1`, maxRetries: 0 });
    const url = `data:image/webp;base64,${base64(webp)}`;
    const messages = [{ role: "user" as const, content: [{ type: "image_url" as const, image_url: { url } }, { type: "text" as const, text: CAPTION.prefix }] }];
    const answer = await openai.chat.completions.create({ model: "paligemma-shapes", messages, max_tokens: 24 });
    expect(answer.choices[0].message.content).toBe(CAPTION.answer);
    const fixture = JSON.parse(readFileSync(new URL("../fixtures/images/pillow-webp-gif.json", import.meta.url), "utf8"));
    const gif = Buffer.from(fixture.gif.find((c: { name: string }) => c.name === "animated-pillow").gif, "base64");
    const res = await fetch(`${server.url}/v1/images`, { method: "POST", headers: { "content-type": "image/gif" }, body: gif });
    expect([res.status, await res.json<any>()]).toEqual([201, expect.objectContaining({ cached: false, tokens: 36 })]);
  });

  it("reports cached: true for the same image uploaded twice", async () => {
    const first = await uploadImage("img_005_160x120.png");
    const second = await uploadImage("img_005_160x120.png");
    expect(first).toMatchObject({ cached: false, model: "paligemma-shapes", tokens: 36 });
    expect(second).toEqual({ ...first, cached: true });
  });

  it("streams native SSE frames exactly, and reuses a session's prefix cache at a lower time to first token", async () => {
    await postJson("/v1/generate", { image: base64(evalImage("img_002_200x200.png")), prompt: "caption en", stream: false }); // warm-up
    const { image_id } = await uploadImage("img_003_77x133.png");
    const ask = async () => {
      const { raw, events } = await readSse(await postJson("/v1/generate", { image_id, prompt: "caption en", max_tokens: 24 }, { "x-session-id": "e2e-s" }));
      expect(raw).toMatch(/^(event: token\ndata: \{[^\n]*\}\n\n)+event: done\ndata: \{[^\n]*\}\n\n$/);
      return JSON.parse(events.at(-1)!.data);
    };
    const first = await ask();
    const second = await ask();
    const want = CASES.find((c) => c.image === "img_003_77x133.png" && c.prefix === "caption en")!;
    expect([first.text, first.ids]).toEqual([want.answer, want.answer_ids]);
    expect([second.text, second.ids]).toEqual([want.answer, want.answer_ids]);
    expect(first.usage.prefix_cache).toEqual({ soft_tokens: "miss", kv: "miss", cached_tokens: 0 });
    expect(second.usage.prefix_cache).toEqual({ soft_tokens: "hit", kv: "hit", cached_tokens: first.usage.prompt_tokens });
    expect(second.usage.timings.time_to_first_token_ms).toBeLessThan(first.usage.timings.time_to_first_token_ms);
    const info = await (await fetch(`${server.url}/v1/sessions/e2e-s`)).json<any>();
    expect(info).toMatchObject({ record: { image_id }, memory: { image_id }, busy: false });
  });

  it("answers bad requests with 4xx JSON", async () => {
    const bad = await fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(bad.status).toBe(400);
    expect((await bad.json<any>()).error.type).toBe("invalid_request");
    const missing = await fetch(`${server.url}/v1/nothing`);
    expect([missing.status, (await missing.json<any>()).error.type]).toEqual([404, "not_found"]);
    const asset = await fetch(`${server.url}/paligemma-shapes/manifest.json`);
    expect(asset.status).toBe(404); // model files are private assets
  });

  it("runs every phase in the kernel module: no onnxruntime instance in either worker", async () => {
    const { image_id } = await uploadImage(CAPTION.image);
    const res = await postJson("/v1/generate", { image_id, prompt: CAPTION.prefix, max_tokens: 24, temperature: 0, stream: false, session: "engine-check" });
    expect((await res.json<any>()).text).toBe(CAPTION.answer);
    const session = await (await fetch(`${server.url}/v1/sessions/engine-check`)).json<any>();
    expect(session.engine.backends).toEqual({ vision: "kernel", prefill: "kernel", decode: "kernel" });
    expect(session.engine.onnxruntime).toBe(false);
    expect(session.engine.kernelWeightBytes).toBeGreaterThan(0);
    const info = await (await fetch(`${server.url}/v1/info`)).json<any>();
    expect(info.model).toBe("paligemma-shapes");
    expect(info.vision.engine.backends.vision).toBe("kernel");
    expect(info.vision.engine.onnxruntime).toBe(false);
    expect(info.vision.engine.kernelWeightBytes).toBeGreaterThan(0);
  });

  // Every 4th eval case, ids and text exact; test/tasks/eval.test.ts checks all 247 answers through npm run eval.
  const SAMPLE = CASES.filter((_, i) => i % 4 === 0);
  it(`gives the reference answer ids for ${SAMPLE.length} eval cases (greedy, 24 new tokens)`, async () => {
    const ids = new Map<string, string>();
    for (const name of new Set(SAMPLE.map((c) => c.image))) ids.set(name, (await uploadImage(name)).image_id);
    const mismatches: string[] = [];
    const queue = [...SAMPLE];
    const worker = async (lane: number) => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const res = await postJson("/v1/generate", {
          image_id: ids.get(c.image),
          prompt: c.prefix,
          max_tokens: 24,
          temperature: 0,
          stream: false,
          session: `eval-${lane}-${c.image}`,
        });
        const body = await res.json<any>();
        if (body.text !== c.answer || JSON.stringify(body.ids) !== JSON.stringify(c.answer_ids)) {
          mismatches.push(`${c.image} "${c.prefix}": got ${JSON.stringify(body.text ?? body)} ${JSON.stringify(body.ids)}, want ${JSON.stringify(c.answer)} ${JSON.stringify(c.answer_ids)}`);
        }
      }
    };
    await Promise.all([0, 1, 2].map(worker));
    expect(mismatches).toEqual([]);
  }, 300_000);
});
