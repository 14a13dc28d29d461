/**
 * Remote images (shared/api/remote-image.ts) with a mocked fetch: the IMAGE_URL_ORIGINS policy, redirects
 * followed by hand and re-checked, the byte cap while streaming, the time limit, and each failure as its 4xx or
 * 502/504 naming the URL. Then through the routes (harness): chat `image_url` parts and the native `image_url`.
 * Against a real HTTP server through `wrangler dev`: remote-image-e2e.test.ts.
 */
import { describe, expect, it } from "vitest";
import { fetchRemoteImage, imageUrlPolicy, type RemoteImageOptions } from "../../shared/api/remote-image.ts";
import { ConfigError, errorData } from "../../shared/errors.ts";
import { decoderLimits } from "../../functions/decoder/limits.ts";
import { base64, createHarness, evalImage, post } from "./support/harness.ts";

const PNG = evalImage("img_000_96x96.png");
const ANY = imageUrlPolicy("*");

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>;

/** A fetch over `routes` (by URL) that records every call. */
function mockFetch(routes: Record<string, Handler>) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const handler = routes[url];
    if (!handler) throw new TypeError(`fetch failed: ${url}`);
    return handler(url, init);
  };
  return { fetch, calls };
}

const redirect = (location: string, status = 302): Handler => () => new Response(null, { status, headers: { location } });
const png: Handler = () => new Response(PNG, { headers: { "content-type": "image/png" } });

async function failure(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    return errorData(err);
  }
  throw new Error("expected a failure");
}

const opts = (fetch: RemoteImageOptions["fetch"], extra: Partial<RemoteImageOptions> = {}): RemoteImageOptions => ({
  policy: ANY,
  maxBytes: 1 << 20,
  timeoutMs: 1000,
  fetch,
  ...extra,
});

describe("IMAGE_URL_ORIGINS", () => {
  it("parses *, empty, and lists of origins; refuses what is not an origin", () => {
    expect(imageUrlPolicy(undefined)).toEqual({ anyHttps: true, origins: [] });
    expect(imageUrlPolicy("")).toEqual({ anyHttps: false, origins: [] });
    expect(imageUrlPolicy(" https://img.example, http://127.0.0.1:9000 ")).toEqual({ anyHttps: false, origins: ["https://img.example", "http://127.0.0.1:9000"] });
    expect(imageUrlPolicy("*,http://localhost:8000/")).toEqual({ anyHttps: true, origins: ["http://localhost:8000"] });
    for (const bad of ["img.example", "https://img.example/path", "ftp://img.example", "https://u:p@img.example", "https://img.example?q"]) {
      expect(() => imageUrlPolicy(bad), bad).toThrow(ConfigError);
      expect(() => imageUrlPolicy(bad)).toThrow(/IMAGE_URL_ORIGINS/);
    }
  });
});

describe("fetchRemoteImage", () => {
  it("fetches an https image, with redirect: manual", async () => {
    const m = mockFetch({ "https://img.example/a.png": png });
    expect(await fetchRemoteImage("https://img.example/a.png", "image_url", opts(m.fetch))).toEqual(PNG);
    expect(m.calls.map((c) => [c.url, c.init.redirect, c.init.method])).toEqual([["https://img.example/a.png", "manual", "GET"]]);
  });

  it("refuses schemes, credentials and origins the policy does not allow (400, naming the URL), before fetching", async () => {
    const m = mockFetch({});
    const cases: [string, RemoteImageOptions["policy"], RegExp][] = [
      ["http://img.example/a.png", ANY, /"http:\/\/img\.example\/a\.png" is not https:/],
      ["ftp://img.example/a.png", ANY, /scheme "ftp:"; only https:/],
      ["https://user:pw@img.example/a.png", ANY, /carries credentials/],
      ["https://other.example/a.png", imageUrlPolicy("https://img.example"), /origin "https:\/\/other\.example", which this deployment does not fetch from \(IMAGE_URL_ORIGINS\)/],
      ["https://img.example/a.png", imageUrlPolicy(""), /turned off here \(IMAGE_URL_ORIGINS is empty\)/],
      ["https://", ANY, /is not a valid URL/],
    ];
    for (const [url, policy, message] of cases) {
      const e = await failure(fetchRemoteImage(url, "image_url", opts(m.fetch, { policy })));
      expect([e.status, e.type, e.param], url).toEqual([400, "invalid_request", "image_url"]);
      expect(e.message).toMatch(message);
    }
    expect(m.calls).toEqual([]);
  });

  it("fetches from an http origin that is listed", async () => {
    const m = mockFetch({ "http://127.0.0.1:9000/a.png": png });
    expect((await fetchRemoteImage("http://127.0.0.1:9000/a.png", "p", opts(m.fetch, { policy: imageUrlPolicy("http://127.0.0.1:9000") }))).length).toBe(PNG.length);
  });

  it("follows at most 3 redirects, re-checking each target against the policy", async () => {
    const m = mockFetch({
      "https://img.example/1": redirect("/2", 301),
      "https://img.example/2": redirect("https://cdn.example/3", 307),
      "https://cdn.example/3": redirect("4", 308),
      "https://cdn.example/4": png,
      "https://img.example/loop": redirect("/loop"),
      "https://img.example/to-http": redirect("http://img.example/a.png"),
      "https://img.example/to-other": redirect("https://evil.example/a.png"),
      "https://img.example/nowhere": () => new Response(null, { status: 302 }),
    });
    expect(await fetchRemoteImage("https://img.example/1", "p", opts(m.fetch))).toEqual(PNG);
    expect(m.calls.map((c) => c.url)).toEqual(["https://img.example/1", "https://img.example/2", "https://cdn.example/3", "https://cdn.example/4"]);

    const loop = await failure(fetchRemoteImage("https://img.example/loop", "p", opts(m.fetch)));
    expect([loop.status, loop.type, loop.message]).toEqual([502, "bad_gateway", 'the image URL "https://img.example/loop" redirected more than 3 times']);
    const toHttp = await failure(fetchRemoteImage("https://img.example/to-http", "p", opts(m.fetch)));
    expect([toHttp.status, toHttp.message]).toEqual([400, 'the image URL "https://img.example/to-http" redirected to "http://img.example/a.png", which is not https:; only https: image URLs are fetched']);
    const listed = opts(m.fetch, { policy: imageUrlPolicy("https://img.example") });
    const toOther = await failure(fetchRemoteImage("https://img.example/to-other", "p", listed));
    expect([toOther.status, toOther.message]).toEqual([400, expect.stringContaining('redirected to "https://evil.example/a.png", which is on the origin "https://evil.example"')]);
    expect(m.calls.some((c) => c.url.startsWith("https://evil.example") || c.url.startsWith("http:"))).toBe(false);
    const nowhere = await failure(fetchRemoteImage("https://img.example/nowhere", "p", opts(m.fetch)));
    expect([nowhere.status, nowhere.message]).toEqual([502, 'the image URL "https://img.example/nowhere" answered HTTP 302 without a usable location']);
  });

  it("reports a failing or unreachable origin as 502 bad_gateway, naming the URL", async () => {
    const m = mockFetch({ "https://img.example/missing.png": () => new Response("nope", { status: 404 }) });
    const missing = await failure(fetchRemoteImage("https://img.example/missing.png", "image_url", opts(m.fetch)));
    expect(missing).toEqual({ status: 502, type: "bad_gateway", message: 'the image URL "https://img.example/missing.png" answered HTTP 404', param: "image_url" });
    const down = await failure(fetchRemoteImage("https://down.example/a.png", "image_url", opts(m.fetch)));
    expect(down).toEqual({ status: 502, type: "bad_gateway", message: 'the image URL "https://down.example/a.png" could not be fetched: https://down.example is unreachable', param: "image_url" });
  });

  it("refuses a body over the byte limit: by content-length before reading, else while streaming", async () => {
    let pulled = 0;
    let cancelled = false;
    const endless = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            pulled++;
            c.enqueue(new Uint8Array(1000));
          },
          cancel() {
            cancelled = true;
          },
        }),
      );
    const m = mockFetch({
      "https://img.example/declared": () => new Response(new Uint8Array(5000), { headers: { "content-length": "5000" } }),
      "https://img.example/endless": endless,
    });
    const declared = await failure(fetchRemoteImage("https://img.example/declared", "p", opts(m.fetch, { maxBytes: 4096 })));
    expect([declared.status, declared.type, declared.message]).toEqual([413, "payload_too_large", 'the image at "https://img.example/declared" is larger than 4096 bytes']);
    const streamed = await failure(fetchRemoteImage("https://img.example/endless", "p", opts(m.fetch, { maxBytes: 4096 })));
    expect([streamed.status, streamed.type]).toEqual([413, "payload_too_large"]);
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThanOrEqual(7); // stopped at the fifth kilobyte (plus the stream's own read-ahead)
  });

  it("gives up after the time limit: no answer, or a body that stalls (504 timeout)", async () => {
    const hang: Handler = (_, init) => new Promise((_, reject) => init.signal!.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
    const stall: Handler = () => new Response(new ReadableStream({ start: (c) => c.enqueue(new Uint8Array(10)) })); // never closes
    const m = mockFetch({ "https://slow.example/a.png": hang, "https://slow.example/b.png": stall });
    const t0 = Date.now();
    const silent = await failure(fetchRemoteImage("https://slow.example/a.png", "p", opts(m.fetch, { timeoutMs: 150 })));
    expect([silent.status, silent.type, silent.message]).toEqual([504, "timeout", 'the image URL "https://slow.example/a.png" did not answer within 0.2 s']);
    const stalled = await failure(fetchRemoteImage("https://slow.example/b.png", "p", opts(m.fetch, { timeoutMs: 150 })));
    expect([stalled.status, stalled.type]).toEqual([504, "timeout"]);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("remote images through the routes", () => {
  const chat = (url: string) => ({
    model: "paligemma-shapes",
    stream: false,
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: "caption en" }] }],
  });

  it("answers a chat image_url part and the native image_url field", async () => {
    const m = mockFetch({ "https://img.example/a.png": png });
    const h = await createHarness({ fetch: m.fetch });
    const res = await post(h.app, "/v1/chat/completions", chat("https://img.example/a.png"));
    expect([res.status, (await res.json<any>()).choices[0].message.content]).toEqual([200, "a green circle"]);
    const native = await post(h.app, "/v1/generate", { image_url: "https://img.example/a.png", prompt: "caption en", stream: false });
    const body = await native.json<any>();
    expect([native.status, body.text]).toEqual([200, "a green circle"]);
    // The fetched bytes are the image: the same id as the image sent inline.
    const inline = await (await post(h.app, "/v1/generate", { image: base64(PNG), prompt: "caption en", stream: false })).json<any>();
    expect(body.image_id).toBe(inline.image_id);
    const dataUrl = await post(h.app, "/v1/generate", { image_url: `data:image/png;base64,${base64(PNG)}`, prompt: "caption en", stream: false });
    expect(dataUrl.status).toBe(200);
  });

  it("renders each failure as its status in the route's shape, never a 500", async () => {
    const m = mockFetch({ "https://img.example/gone.png": () => new Response(null, { status: 410 }), "https://img.example/a.png": png });
    const h = await createHarness({ fetch: m.fetch, vars: { MAX_IMAGE_BYTES: "1000" } });
    const gone = await post(h.app, "/v1/chat/completions", chat("https://img.example/gone.png"));
    expect([gone.status, await gone.json<any>()]).toEqual([
      502,
      { error: { message: 'the image URL "https://img.example/gone.png" answered HTTP 410', type: "server_error", param: "messages[0].content[0].image_url.url", code: "bad_gateway" } },
    ]);
    const big = await post(h.app, "/v1/generate", { image_url: "https://img.example/a.png", prompt: "caption en", stream: false });
    expect([big.status, (await big.json<any>()).error]).toEqual([413, { type: "payload_too_large", message: 'the image at "https://img.example/a.png" is larger than 1000 bytes', param: "image_url" }]);
    const both = await post(h.app, "/v1/generate", { image_url: "https://img.example/a.png", image: base64(PNG), prompt: "caption en" });
    expect([both.status, (await both.json<any>()).error.message]).toEqual([422, "image_id: give one of image, image_url and image_id, not several"]);
    const inImage = await post(h.app, "/v1/generate", { image: "https://img.example/a.png", prompt: "caption en" });
    expect([inImage.status, (await inImage.json<any>()).error.message]).toEqual([422, "image takes base64 or a data URL (data:image/png;base64,...); send a remote URL as image_url"]);
  });

  it("follows IMAGE_URL_ORIGINS: off, a list, and a var that is not one (a 500 naming it)", async () => {
    const m = mockFetch({ "https://img.example/a.png": png });
    const off = await createHarness({ fetch: m.fetch, vars: { IMAGE_URL_ORIGINS: "" } });
    const refused = await post(off.app, "/v1/generate", { image_url: "https://img.example/a.png", prompt: "caption en" });
    expect([refused.status, (await refused.json<any>()).error.param]).toEqual([400, "image_url"]);
    const listed = await createHarness({ fetch: m.fetch, vars: { IMAGE_URL_ORIGINS: "https://cdn.example, https://img.example" } });
    expect((await post(listed.app, "/v1/generate", { image_url: "https://img.example/a.png", prompt: "caption en", stream: false })).status).toBe(200);
    // A var that is not a policy fails the deployment's limits (every request: a 500 naming the var).
    expect(() => decoderLimits({ IMAGE_URL_ORIGINS: "img.example" })).toThrow(ConfigError);
    expect(() => decoderLimits({ IMAGE_URL_ORIGINS: "img.example" })).toThrow('IMAGE_URL_ORIGINS: "img.example" is not an origin');
    expect(decoderLimits({}).imageUrls).toEqual({ anyHttps: true, origins: [] });
    expect(decoderLimits({ IMAGE_URL_TIMEOUT_S: "3" }).imageUrlTimeoutMs).toBe(3000);
    expect(m.calls.length).toBe(1); // only the listed deployment fetched
  });
});
