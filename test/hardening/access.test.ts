/**
 * Access control through the decoder app (`app.request`): API keys (401, constant-time check, open mode),
 * sessions and images bound to their key (404 for another key), unguessable ids, CORS (off by default),
 * and rate limiting per key / per IP with `retry-after`.
 */
import { describe, expect, it } from "vitest";
import { authenticate, parseApiKeys } from "../../shared/worker/auth.ts";
import { TokenBucket } from "../../shared/worker/token-bucket.ts";
import { base64, createHarness, post } from "../serving/support/harness.ts";
import { GOOD_PNG } from "./support.ts";

const KEYS = "alpha-key-0123456789, beta-key-0123456789";
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("API keys", () => {
  it("parse from the secret and match only whole keys", async () => {
    expect(await parseApiKeys(undefined)).toBeNull();
    expect(await parseApiKeys("  ,\n ")).toBeNull();
    const keys = (await parseApiKeys(KEYS))!;
    expect(keys.digests).toHaveLength(2);
    const owner = await authenticate("Bearer alpha-key-0123456789", keys);
    expect(owner).toMatch(/^[0-9a-f]{32}$/);
    expect(await authenticate("bearer  beta-key-0123456789 ", keys)).not.toBe(owner);
    for (const header of [undefined, "", "Bearer", "Basic alpha-key-0123456789", "Bearer alpha-key-012345678", "Bearer alpha-key-0123456789x", "Bearer a b"]) {
      expect(await authenticate(header, keys)).toBeNull();
    }
  });

  it("guard every /v1/* route with 401 JSON; /healthz stays open and reports the mode", async () => {
    const h = await createHarness({ vars: { API_KEYS: KEYS } });
    const routes: [string, string][] = [["GET", "/v1/models"], ["POST", "/v1/generate"], ["POST", "/v1/chat/completions"], ["POST", "/v1/images"], ["GET", "/v1/sessions/x"], ["DELETE", "/v1/sessions/x"], ["GET", "/v1/unknown"]];
    for (const [method, path] of routes) {
      for (const headers of [{}, bearer("wrong"), { authorization: "alpha-key-0123456789" }]) {
        const res = await h.app.request(path, { method, headers });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
        // Native routes keep the native type; the OpenAI routes use OpenAI's (errors.ts).
        const openai = path === "/v1/models" || path === "/v1/chat/completions";
        expect((await res.json<any>()).error.type).toBe(openai ? "authentication_error" : "authentication");
      }
    }
    expect((await h.app.request("/v1/models", { headers: bearer("beta-key-0123456789") })).status).toBe(200);
    expect(await (await h.app.request("/healthz")).json<any>()).toMatchObject({ auth: "api_key" });
    const open = await createHarness();
    expect((await open.app.request("/v1/models")).status).toBe(200);
    expect(await (await open.app.request("/healthz")).json<any>()).toMatchObject({ auth: "open" });
  });

  it("bind sessions and images to the key that made them: another key gets 404s", async () => {
    const h = await createHarness({ vars: { API_KEYS: KEYS } });
    const a = bearer("alpha-key-0123456789");
    const b = bearer("beta-key-0123456789");
    const first = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", stream: false, session: "s" }, a);
    const { image_id } = await first.json<any>();
    expect((await h.app.request("/v1/sessions/s", { headers: a })).status).toBe(200);
    expect((await h.app.request("/v1/sessions/s", { headers: b })).status).toBe(404);
    expect((await h.app.request("/v1/sessions/s", { method: "DELETE", headers: b })).status).toBe(404);
    const cont = await post(h.app, "/v1/generate", { prompt: "caption en", stream: false, session: "s" }, b);
    expect([cont.status, (await cont.json<any>()).error.param]).toEqual([404, "session"]);
    const borrow = await post(h.app, "/v1/generate", { image_id, prompt: "caption en", stream: false }, b);
    expect([borrow.status, (await borrow.json<any>()).error.param]).toEqual([404, "image_id"]);
    // b's own upload of the same bytes is a new entry under another id: no "cached" oracle across keys.
    const up = await h.app.request("/v1/images", { method: "POST", headers: { ...b, "content-type": "image/png" }, body: GOOD_PNG });
    expect(up.status).toBe(201);
    expect((await up.json<any>()).image_id).not.toBe(image_id);
    expect((await h.app.request("/v1/sessions/s", { headers: a })).status).toBe(200); // a's session is untouched
  });

  it("an unnamed request names no session: no x-session-id, a transient session each time, nothing stored", async () => {
    const h = await createHarness();
    for (let i = 0; i < 3; i++) {
      const res = await post(h.app, "/v1/generate", { image: base64(GOOD_PNG), prompt: "caption en", stream: false });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-session-id")).toBeNull();
      expect((await res.json<any>()).session).toBeNull();
    }
    expect([h.transient.length, h.sessions.size, h.stored.size]).toEqual([3, 0, 0]);
  });
});

describe("CORS", () => {
  it("is off by default: no CORS headers, preflights are not answered", async () => {
    const h = await createHarness();
    const res = await h.app.request("/v1/models", { headers: { origin: "https://evil.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const pre = await h.app.request("/v1/generate", { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    expect(pre.status).toBe(405);
  });

  it("allows exactly the configured origins, preflights before the key check", async () => {
    const h = await createHarness({ vars: { CORS_ORIGINS: "https://app.example", API_KEYS: KEYS } });
    const pre = await h.app.request("/v1/generate", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(pre.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    const ok = await h.app.request("/v1/models", { headers: { origin: "https://app.example", ...bearer("alpha-key-0123456789") } });
    expect([ok.status, ok.headers.get("access-control-allow-origin")]).toEqual([200, "https://app.example"]);
    const denied = await h.app.request("/v1/models", { headers: { origin: "https://other.example" } });
    expect([denied.status, denied.headers.get("access-control-allow-origin")]).toEqual([401, null]);
  });
});

describe("rate limiting", () => {
  it("a token bucket refills at its rate and reports when to retry", () => {
    const bucket = new TokenBucket();
    const limit = { perMinute: 60, burst: 2 };
    expect([bucket.take(limit, 0).ok, bucket.take(limit, 0).ok]).toEqual([true, true]);
    expect(bucket.take(limit, 0)).toEqual({ ok: false, remaining: 0, retryAfterS: 1 });
    expect(bucket.take(limit, 500)).toMatchObject({ ok: false, retryAfterS: 1 });
    expect(bucket.take(limit, 1000).ok).toBe(true);
    expect(bucket.take({ perMinute: 6, burst: 1 }, 1000)).toMatchObject({ ok: false, retryAfterS: 10 });
    expect(new TokenBucket().take({ perMinute: 0, burst: 1 }, 0).ok).toBe(true); // 0 = off
  });

  it("429 with retry-after per client IP when open; loopback is not limited", async () => {
    const h = await createHarness({ vars: { RATE_LIMIT_RPM: "60", RATE_LIMIT_BURST: "2" } });
    const from = (ip: string) => h.app.request("/v1/models", { headers: { "cf-connecting-ip": ip } });
    expect([(await from("203.0.113.7")).status, (await from("203.0.113.7")).status]).toEqual([200, 200]);
    const refused = await from("203.0.113.7");
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([429, "1"]);
    expect(await refused.json<any>()).toEqual({
      error: { message: "too many requests; retry in 1 s", type: "rate_limit_error", param: null, code: "rate_limit_exceeded" },
    });
    const native = await h.app.request("/v1/sessions/x", { headers: { "cf-connecting-ip": "203.0.113.7" } });
    expect(await native.json<any>()).toEqual({ error: { type: "rate_limited", message: "too many requests; retry in 1 s" } });
    expect((await from("198.51.100.1")).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await from("127.0.0.1")).status).toBe(200);
    expect(h.rateKeys.filter((k) => k.startsWith("ip:127"))).toEqual([]);
  });

  it("per key with keys, and refused keys count against the IP (no fast guessing)", async () => {
    const h = await createHarness({ vars: { API_KEYS: KEYS, RATE_LIMIT_RPM: "60", RATE_LIMIT_BURST: "2" } });
    const call = (key: string) => h.app.request("/v1/models", { headers: { ...bearer(key), "cf-connecting-ip": "127.0.0.1" } });
    expect([(await call("alpha-key-0123456789")).status, (await call("alpha-key-0123456789")).status, (await call("alpha-key-0123456789")).status]).toEqual([200, 200, 429]);
    expect((await call("beta-key-0123456789")).status).toBe(200);
    expect([(await call("guess-1")).status, (await call("guess-2")).status, (await call("guess-3")).status]).toEqual([401, 401, 429]);
  });
});
