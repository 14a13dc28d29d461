/**
 * What users of OpenAI-compatible servers expect (issue 17, "OpenAI compatibility"), checked through the official
 * `openai` client (its fetch routed into `app.request`) and byte for byte: OpenAI's error shape and type names on
 * the OpenAI routes, `x-request-id` on every response, system messages dropped by default and said so, `/health`.
 */
import OpenAI, { APIError } from "openai";
import { describe, expect, it } from "vitest";
import { base64, createHarness, evalImage, post } from "./support/harness.ts";
import { readSse } from "./support/sse-client.ts";

const URL_PNG = `data:image/png;base64,${base64(evalImage("img_000_96x96.png"))}`;
const user = { role: "user" as const, content: [{ type: "image_url" as const, image_url: { url: URL_PNG } }, { type: "text" as const, text: "caption en" }] };

type App = { request: (input: Request) => Response | Promise<Response> };
function client(app: App, opts: { apiKey?: string; headers?: Record<string, string> } = {}): OpenAI {
  return new OpenAI({
    apiKey: opts.apiKey ?? "unused",
    baseURL: "http://decoder.test/v1",
    maxRetries: 0,
    defaultHeaders: opts.headers,
    fetch: (input: string | URL | Request, init?: RequestInit) => Promise.resolve(app.request(new Request(input, init))),
  });
}

const caught = (p: Promise<unknown>): Promise<APIError> =>
  p.then(
    () => {
      throw new Error("expected an APIError");
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(OpenAI.APIError);
      return e as APIError;
    },
  );

const fields = (e: APIError) => ({ status: e.status, type: e.type, code: e.code, param: e.param, message: (e.error as { message: string }).message });

describe("OpenAI's error shape on the OpenAI routes", () => {
  it("400, 404 and 422 raise the client's classes with type, code, param and the request id", async () => {
    const h = await createHarness({ session: { contextTokens: 60 } });
    const c = client(h.app);
    const n = await caught(c.chat.completions.create({ model: "paligemma-shapes", messages: [user], n: 2 }, { headers: { "x-request-id": "trace-1" } }));
    expect(n).toBeInstanceOf(OpenAI.BadRequestError);
    expect([fields(n), n.requestID]).toEqual([
      { status: 400, type: "invalid_request_error", code: "unsupported_value", param: "n", message: "n: only n = 1 is supported (one answer per request)" },
      "trace-1",
    ]);
    const model = await caught(c.chat.completions.create({ model: "gpt-4o", messages: [user] }));
    expect(model).toBeInstanceOf(OpenAI.NotFoundError);
    expect(fields(model)).toEqual({
      status: 404, type: "not_found_error", code: "model_not_found", param: "model",
      message: 'model "gpt-4o" is not served here; GET /v1/models lists "paligemma-shapes", "paligemma-shapes:shapes-lora-a"',
    });
    expect(model.requestID).toMatch(/^req_[0-9a-f]{32}$/);
    const long = await caught(c.chat.completions.create({ model: "paligemma-shapes", messages: [user], max_tokens: 30 }));
    expect(long).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect(fields(long)).toEqual({
      status: 422, type: "invalid_request_error", code: "context_length_exceeded", param: "max_tokens",
      message: "the prompt (40 tokens with the image) plus max_tokens (30) exceeds the model's context of 60 tokens",
    });
  });

  it("401 and 429 (chat and models), with the bytes on the wire", async () => {
    const keyed = await createHarness({ vars: { API_KEYS: "alpha-key-0123456789" } });
    for (const call of [(c: OpenAI) => c.chat.completions.create({ model: "paligemma-shapes", messages: [user] }), (c: OpenAI) => c.models.list()]) {
      const e = await caught(call(client(keyed.app, { apiKey: "wrong" })));
      expect(e).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(fields(e)).toEqual({ status: 401, type: "authentication_error", code: "invalid_api_key", param: null, message: "send a valid API key as Authorization: Bearer <key>" });
    }
    const limited = await createHarness({ vars: { RATE_LIMIT_RPM: "60", RATE_LIMIT_BURST: "1" } });
    const c = client(limited.app, { headers: { "cf-connecting-ip": "203.0.113.9" } });
    await c.models.list();
    const e = await caught(c.models.list());
    expect(e).toBeInstanceOf(OpenAI.RateLimitError);
    expect(fields(e)).toEqual({ status: 429, type: "rate_limit_error", code: "rate_limit_exceeded", param: null, message: "too many requests; retry in 1 s" });

    const raw = await keyed.app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(await raw.text()).toBe('{"error":{"message":"send a valid API key as Authorization: Bearer <key>","type":"authentication_error","param":null,"code":"invalid_api_key"}}');
  });

  it("405 and malformed JSON on the chat route; the native routes keep their shape", async () => {
    const h = await createHarness();
    const get = await h.app.request("/v1/chat/completions");
    expect([get.status, get.headers.get("allow"), await get.text()]).toEqual([
      405,
      "POST",
      '{"error":{"message":"\\"/v1/chat/completions\\" does not accept \\"GET\\"; use POST","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}',
    ]);
    const raw = (path: string) => h.app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    const bad = await raw("/v1/chat/completions");
    expect(await bad.text()).toBe('{"error":{"message":"Malformed JSON in request body","type":"invalid_request_error","param":null,"code":null}}');
    const native = await raw("/v1/generate");
    expect(await native.text()).toBe('{"error":{"type":"invalid_request","message":"Malformed JSON in request body"}}');
  });
});

describe("x-request-id", () => {
  it("echoes a sane client id and replaces any other, on every route, errors and streams included", async () => {
    const h = await createHarness({ vars: { CORS_ORIGINS: "https://app.example" } });
    const id = (res: Response) => res.headers.get("x-request-id");
    const requests: [string, RequestInit][] = [
      ["/healthz", {}],
      ["/health", {}],
      ["/", {}],
      ["/v1/models", {}],
      ["/v1/nothing", {}],
      ["/v1/generate", { method: "GET" }],
      ["/v1/generate", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } }],
      ["/v1/generate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: URL_PNG, prompt: "caption en" }) }],
      ["/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "paligemma-shapes", messages: [user], stream: true }) }],
    ];
    for (const [path, init] of requests) {
      const mine = await h.app.request(path, { ...init, headers: { ...init.headers, "x-request-id": "client-7.a:b/c+d=e_f-g" } });
      expect(id(mine), `${init.method ?? "GET"} ${path}`).toBe("client-7.a:b/c+d=e_f-g");
      await mine.body?.cancel();
      for (const insane of ["x".repeat(129), "has space", "quote\"", ""]) {
        const made = await h.app.request(path, { ...init, headers: { ...init.headers, "x-request-id": insane } });
        expect(id(made), `${path} with ${insane.slice(0, 10)}`).toMatch(/^req_[0-9a-f]{32}$/);
        await made.body?.cancel();
      }
    }
    const preflight = await h.app.request("/v1/generate", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } });
    const simple = await h.app.request("/v1/models", { headers: { origin: "https://app.example" } });
    expect(simple.headers.get("access-control-expose-headers")).toBe("x-session-id,retry-after,x-request-id,x-paligemma-ignored");
    expect(preflight.status).toBe(204);
  });

  it("the openai client sees it as _request_id, and each request is one log line", async () => {
    const h = await createHarness();
    const r = await client(h.app).chat.completions.create({ model: "paligemma-shapes", messages: [user] }, { headers: { "x-request-id": "abc-123" } });
    expect(r._request_id).toBe("abc-123");
    await h.app.request("/v1/nothing");
    const lines = h.logs.map((l) => JSON.parse(l));
    expect(lines.map(({ duration_ms, ...rest }) => (expect(duration_ms).toBeGreaterThanOrEqual(0), rest))).toEqual([
      { request_id: "abc-123", method: "POST", path: "/v1/chat/completions", status: 200 },
      { request_id: expect.stringMatching(/^req_[0-9a-f]{32}$/), method: "GET", path: "/v1/nothing", status: 404 },
    ]);
    expect(Object.keys(lines[0])).toEqual(["request_id", "method", "path", "status", "duration_ms"]);
  });
});

describe("system messages (CHAT_SYSTEM_MESSAGES)", () => {
  const system = { role: "system" as const, content: "You are a helpful assistant." };
  const developer = { role: "developer" as const, content: "Be brief." };

  it("are dropped by default, and the response says so (JSON, stream and error)", async () => {
    const h = await createHarness();
    const { data, response } = await client(h.app).chat.completions.create({ model: "paligemma-shapes", messages: [system, user] }).withResponse();
    expect([data.choices[0].message.content, response.headers.get("x-paligemma-ignored")]).toEqual(["a green circle", "system_message"]);
    const stream = await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes", messages: [system, developer, user], stream: true });
    expect(stream.headers.get("x-paligemma-ignored")).toBe("system_message, developer_message");
    expect((await readSse(stream)).raw.endsWith("data: [DONE]\n\n")).toBe(true);
    const failed = await post(h.app, "/v1/chat/completions", { model: "nope", messages: [system, user] });
    expect([failed.status, failed.headers.get("x-paligemma-ignored")]).toEqual([404, "system_message"]);
    const plain = await post(h.app, "/v1/chat/completions", { model: "paligemma-shapes", messages: [user] });
    expect(plain.headers.get("x-paligemma-ignored")).toBeNull();
  });

  it('are refused with "reject"; any other value is a deployment error that names the var', async () => {
    const h = await createHarness({ vars: { CHAT_SYSTEM_MESSAGES: "reject" } });
    const e = await caught(client(h.app).chat.completions.create({ model: "paligemma-shapes", messages: [system, user] }));
    expect(fields(e)).toEqual({
      status: 422, type: "invalid_request_error", code: null, param: "messages[0].role",
      message: '"system" messages are not supported: PaliGemma has no chat template, send one user message',
    });
    await expect(createHarness({ vars: { CHAT_SYSTEM_MESSAGES: "drop" } })).rejects.toThrow(
      'deployment configuration: CHAT_SYSTEM_MESSAGES must be "ignore" or "reject", got "drop"',
    );
  });
});

describe("/health", () => {
  it("answers as /healthz, without a key; other methods are a 405", async () => {
    const h = await createHarness({ vars: { API_KEYS: "alpha-key-0123456789" } });
    const [a, b] = await Promise.all([h.app.request("/health"), h.app.request("/healthz")]);
    expect([a.status, await a.json()]).toEqual([200, await b.json()]);
    const postHealth = await h.app.request("/health", { method: "POST" });
    expect([postHealth.status, postHealth.headers.get("allow")]).toEqual([405, "GET"]);
  });
});
