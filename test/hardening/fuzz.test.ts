/**
 * Property tests (fast-check): random and mutated bytes at the image path, random JSON and near-valid requests
 * at the schemas. Whatever comes in, the answer is a 4xx JSON error or a valid response (a complete SSE stream
 * or JSON result), never a 5xx, an exception escaping the handler, or a hang.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../shared/errors.ts";
import { decodeImage } from "../../shared/image/index.ts";
import { base64, createHarness, type Harness } from "../serving/support/harness.ts";
import { readSse } from "../serving/support/sse-client.ts";
import { GOOD_PNG, jpegDeclaring } from "./support.ts";

const GOOD_JPEG = jpegDeclaring();
/** Fixed seed for a reproducible CI run; FUZZ_SEED=<n> explores elsewhere. */
const RUNS = { numRuns: 150, seed: Number(process.env.FUZZ_SEED ?? 20260702), endOnFailure: true };

/** A valid image with random bytes overwritten, cut short, or spliced with random bytes. */
const mutatedImage = fc.oneof(
  fc.constantFrom(GOOD_PNG, GOOD_JPEG).chain((img) =>
    fc.array(fc.tuple(fc.nat({ max: img.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const out = img.slice();
      for (const [at, value] of edits) out[at] = value;
      return out;
    }),
  ),
  fc.constantFrom(GOOD_PNG, GOOD_JPEG).chain((img) => fc.nat({ max: img.length }).map((n) => img.slice(0, n))),
  fc.tuple(fc.constantFrom(GOOD_PNG, GOOD_JPEG), fc.nat({ max: 64 }), fc.uint8Array({ maxLength: 64 })).map(([img, at, junk]) => {
    const out = new Uint8Array(img.length + junk.length);
    out.set(img.subarray(0, at));
    out.set(junk, at);
    out.set(img.subarray(at), at + junk.length);
    return out;
  }),
  fc.uint8Array({ maxLength: 2048 }),
);

/** Asserts the response is a 4xx JSON error or a success, and reads a success to its end. */
async function wellBehaved(res: Response): Promise<void> {
  expect(res.status).toBeLessThan(500);
  const type = res.headers.get("content-type") ?? "";
  if (res.status >= 400) {
    expect(type).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(typeof body.error.type).toBe("string");
    expect(typeof body.error.message).toBe("string");
    return;
  }
  if (type.startsWith("text/event-stream")) {
    const { raw, events } = await readSse(res);
    const last = events.at(-1)!;
    expect(raw.endsWith("\n\n")).toBe(true);
    if (last.event === "error" || last.data.includes('"error"')) expect(last.data).not.toContain("server_error");
    else expect(last.event === "done" || last.data === "[DONE]").toBe(true);
    return;
  }
  if (type.startsWith("text/html")) return; // GET /: the playground page
  expect(type).toMatch(/^application\/json/);
  await res.json();
}

const jsonPost = (h: Harness, path: string, body: string) =>
  Promise.resolve(h.app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body }));

describe("the image decoder path", () => {
  it("decodeImage: random and mutated bytes decode or throw InputError, nothing else", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedImage, async (bytes) => {
        try {
          await decodeImage(bytes, { maxPixels: 1_000_000 });
        } catch (err) {
          if (!(err instanceof InputError)) throw err;
        }
      }),
      { ...RUNS, numRuns: 400 },
    );
  });

  it("POST /v1/images and inline images: a 4xx JSON error or an image id", async () => {
    const h = await createHarness({ maxPixels: 1_000_000 });
    await fc.assert(
      fc.asyncProperty(mutatedImage, fc.constantFrom("image/png", "image/jpeg"), async (bytes, type) => {
        await wellBehaved(await h.app.request("/v1/images", { method: "POST", headers: { "content-type": type }, body: bytes }));
        await wellBehaved(await jsonPost(h, "/v1/generate", JSON.stringify({ image: base64(bytes), prompt: "caption en", stream: false, max_tokens: 2 })));
      }),
      RUNS,
    );
  });
});

/** Values of every JSON type, biased toward what the schemas look at. */
const anyValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }));
/** Mostly a plausible value, sometimes anything. */
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: arb, weight: 9 }, { arbitrary: anyValue, weight: 1 });

const imageSource = fc.oneof(
  { arbitrary: fc.record({ image: maybe(fc.constantFrom(base64(GOOD_PNG), `data:image/png;base64,${base64(GOOD_PNG)}`)) }), weight: 6 },
  { arbitrary: fc.record({ image_id: maybe(fc.constant(`img_${"a".repeat(64)}`)) }), weight: 1 },
  { arbitrary: fc.record({ image: anyValue, image_id: anyValue }), weight: 1 },
  { arbitrary: fc.constant({}), weight: 1 },
);
const nearGenerate = fc
  .tuple(
    imageSource,
    fc.record(
      {
        prompt: maybe(fc.constantFrom("caption en", "detect circle", "", "<image>", "answer en what\nis it")),
        max_tokens: maybe(fc.integer({ min: 1, max: 64 })),
        temperature: maybe(fc.double({ min: 0, max: 2, noNaN: true })),
        top_k: maybe(fc.integer({ min: 0, max: 2000 })),
        top_p: maybe(fc.double({ min: 0.01, max: 1, noNaN: true })),
        seed: maybe(fc.integer({ min: 0, max: 2 ** 32 })),
        stop: maybe(fc.array(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 4 })),
        stream: maybe(fc.boolean()),
        session: maybe(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/)),
        model: maybe(fc.constant("paligemma-shapes")),
      },
      { requiredKeys: ["prompt"] },
    ),
  )
  .map(([image, rest]) => ({ ...image, ...rest }));

const part = fc.oneof(
  fc.record({ type: fc.constant("text"), text: maybe(fc.string({ maxLength: 20 })) }),
  fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: maybe(fc.constant(`data:image/png;base64,${base64(GOOD_PNG)}`)) }) }),
  fc.record({ type: anyValue }),
);
const nearChat = fc.record(
  {
    model: maybe(fc.constant("paligemma-shapes")),
    messages: maybe(fc.array(fc.record({ role: maybe(fc.constantFrom("user", "system", "assistant")), content: maybe(fc.array(part, { maxLength: 3 })) }), { maxLength: 2 })),
    max_tokens: maybe(fc.integer({ min: 1, max: 64 })),
    temperature: maybe(fc.double({ min: 0, max: 2, noNaN: true })),
    stream: maybe(fc.boolean()),
    stream_options: maybe(fc.record({ include_usage: fc.boolean() })),
    logprobs: maybe(fc.boolean()),
    n: maybe(fc.integer({ min: 0, max: 2 })),
  },
  { requiredKeys: [] },
);

describe("the request schemas", () => {
  it("random JSON at both routes: 4xx JSON errors", async () => {
    const h = await createHarness();
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 4 }), fc.constantFrom("/v1/generate", "/v1/chat/completions"), async (body, path) => {
        await wellBehaved(await jsonPost(h, path, body));
      }),
      RUNS,
    );
  });

  it("near-valid generate and chat requests: a 4xx JSON error or a complete response", async () => {
    const h = await createHarness();
    await fc.assert(
      fc.asyncProperty(nearGenerate, async (body) => wellBehaved(await jsonPost(h, "/v1/generate", JSON.stringify(body)))),
      RUNS,
    );
    await fc.assert(
      fc.asyncProperty(nearChat, async (body) => wellBehaved(await jsonPost(h, "/v1/chat/completions", JSON.stringify(body)))),
      RUNS,
    );
  });

  it("random text bodies, content types, session headers, methods and paths", async () => {
    const h = await createHarness();
    const header = fc.string({ maxLength: 40 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
        fc.oneof(fc.constantFrom("/v1/generate", "/v1/chat/completions", "/v1/images", "/v1/models", "/v1/sessions/x"), fc.webPath()),
        fc.oneof(fc.constant("application/json"), header),
        header,
        fc.string({ maxLength: 200 }),
        async (method, path, type, session, body) => {
          const init: RequestInit = { method, headers: { "content-type": type, "x-session-id": session } };
          if (method !== "GET") init.body = body;
          await wellBehaved(await h.app.request(path.startsWith("/") ? path : `/${path}`, init));
        },
      ),
      RUNS,
    );
  });
});
