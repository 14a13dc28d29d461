/**
 * Remote images: an `https://` URL in a chat request's `image_url` part or the native API's `image_url` field,
 * fetched by the decoder worker (the public entry) before the vision worker sees the bytes.
 *
 * Which URLs are fetched is the decoder's var `IMAGE_URL_ORIGINS`:
 *   "*" (the default)   any https origin
 *   ""                  none: remote images are off
 *   "a, b, …"           exactly these origins (scheme://host[:port]); may list http:// ones (local tests);
 *                       "*" among them also allows any https origin
 * Limits: the body is read as a stream and cut off at the image byte limit (a `content-length` over it is refused
 * before reading); one time limit covers every hop and the body; redirects are followed by hand (at most
 * {@link MAX_IMAGE_REDIRECTS}), each new URL checked against the same policy; URLs with credentials are refused.
 *
 * Errors name the URL's problem: 400 a URL the policy refuses (scheme, origin, credentials, a redirect to such a
 * URL), 413 too large, 502 `bad_gateway` its server failed (an HTTP error status, unreachable, too many
 * redirects), 504 `timeout` no complete answer in time.
 */
import { ConfigError, echo, InputError, ServiceError } from "../errors.ts";

/** Most redirects followed for one image URL. */
export const MAX_IMAGE_REDIRECTS = 3;
/** Default time limit of one image fetch, redirects and body included (`IMAGE_URL_TIMEOUT_S`). */
export const IMAGE_URL_TIMEOUT_S = 10;

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Which remote image URLs a deployment fetches (parsed `IMAGE_URL_ORIGINS`). */
export interface ImageUrlPolicy {
  /** Any https origin ("*"). */
  readonly anyHttps: boolean;
  /** Origins allowed by name, as `URL.origin` writes them. */
  readonly origins: readonly string[];
}

/** Parses `IMAGE_URL_ORIGINS` (unset = "*"); an entry that is not an http(s) origin is a ConfigError naming the var. */
export function imageUrlPolicy(value: string | undefined): ImageUrlPolicy {
  const entries = (value ?? "*").split(/[\s,]+/).filter((e) => e.length > 0);
  const origins: string[] = [];
  for (const entry of entries) {
    if (entry === "*") continue;
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      // reported below
    }
    const bare = url !== null && url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
    if (!url || !bare || (url.protocol !== "https:" && url.protocol !== "http:") || !/^[a-z]+:\/\/[^/]+\/?$/i.test(entry)) {
      throw new ConfigError(`IMAGE_URL_ORIGINS: ${echo(entry, 64)} is not an origin (https://host[:port], or "*" for any https origin)`);
    }
    origins.push(url.origin);
  }
  return { anyHttps: entries.includes("*"), origins };
}

/** How one fetch runs. */
export interface RemoteImageOptions {
  readonly policy: ImageUrlPolicy;
  /** Largest image, in bytes (`MAX_IMAGE_BYTES`). */
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly maxRedirects?: number;
  /** The fetch to use (the Workers global by default; tests pass a mock). */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
}

/** Refuses a URL the policy does not fetch (400, naming the URL); `via` is set for a redirect's target. */
function checkUrl(url: URL, policy: ImageUrlPolicy, param: string, via: string | null): void {
  const what = via === null ? `the image URL ${echo(url.href)}` : `the image URL ${echo(via)} redirected to ${echo(url.href)}, which`;
  const refuse = (why: string): never => {
    throw new InputError("invalid_request", `${what} ${why}`, param);
  };
  if (url.protocol !== "https:" && url.protocol !== "http:") refuse(`has the scheme ${echo(url.protocol, 16)}; only https: image URLs are fetched`);
  if (url.username || url.password) refuse("carries credentials; they are not sent");
  if (policy.origins.includes(url.origin)) return;
  if (policy.anyHttps && url.protocol === "https:") return;
  if (policy.anyHttps) refuse("is not https:; only https: image URLs are fetched");
  refuse(`is on the origin ${echo(url.origin)}, which this deployment does not fetch from (IMAGE_URL_ORIGINS)`);
}

/** Reads `body` up to `maxBytes`; more is a 413 (the rest is not read). Rejects when `signal` aborts. */
async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number, tooLarge: () => never, signal: AbortSignal): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  // A body that stalls must not outlive the time limit, whether or not the fetch ties its stream to the signal.
  const aborted = new Promise<never>((_, reject) => {
    const stop = () => reject(new Error("aborted"));
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
  });
  aborted.catch(() => undefined);
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await Promise.race([reader.read(), aborted]);
    } catch (err) {
      void reader.cancel().catch(() => undefined);
      throw err;
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      tooLarge();
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/** Fetches the image at `raw` under `opts`; `param` names the request field in errors. */
export async function fetchRemoteImage(raw: string, param: string, opts: RemoteImageOptions): Promise<Uint8Array> {
  const { policy, maxBytes } = opts;
  if (!policy.anyHttps && policy.origins.length === 0) {
    throw new InputError("invalid_request", "remote image URLs are turned off here (IMAGE_URL_ORIGINS is empty); send the image as a data URL (data:image/png;base64,...)", param);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError("invalid_request", `the image URL ${echo(raw)} is not a valid URL`, param);
  }
  checkUrl(url, policy, param, null);
  const first = url.href;
  const doFetch = opts.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => ((timedOut = true), ctrl.abort()), opts.timeoutMs);
  const onClientAbort = (): void => ctrl.abort();
  opts.signal?.addEventListener("abort", onClientAbort, { once: true });
  const seconds = Math.round(opts.timeoutMs / 100) / 10;
  const fail = (why: string): never => {
    throw new ServiceError("bad_gateway", `the image URL ${echo(first)} ${why}`, undefined, param);
  };
  const tooLarge = (): never => {
    throw new InputError("payload_too_large", `the image at ${echo(first)} is larger than ${maxBytes} bytes`, param);
  };
  try {
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await doFetch(url.href, { method: "GET", redirect: "manual", signal: ctrl.signal, headers: { accept: "image/png, image/jpeg, image/*;q=0.8" } });
      } catch {
        if (timedOut) throw new ServiceError("timeout", `the image URL ${echo(first)} did not answer within ${seconds} s`, undefined, param);
        if (opts.signal?.aborted) throw new ServiceError("unavailable", "the client went away while the image was fetched", undefined, param);
        return fail(`could not be fetched: ${url.origin} is unreachable`);
      }
      if (REDIRECTS.has(res.status)) {
        await res.body?.cancel().catch(() => undefined);
        if (hop >= (opts.maxRedirects ?? MAX_IMAGE_REDIRECTS)) fail(`redirected more than ${opts.maxRedirects ?? MAX_IMAGE_REDIRECTS} times`);
        const location = res.headers.get("location");
        let next: URL | null = null;
        try {
          next = location ? new URL(location, url) : null;
        } catch {
          // reported below
        }
        if (next === null) return fail(`answered HTTP ${res.status} without a usable location`);
        checkUrl(next, policy, param, url.href);
        url = next;
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        return fail(`answered HTTP ${res.status}${url.href === first ? "" : ` (at ${echo(url.href)})`}`);
      }
      const declared = Number(res.headers.get("content-length") ?? "");
      if (Number.isFinite(declared) && declared > maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        tooLarge();
      }
      try {
        return await readCapped(res.body, maxBytes, tooLarge, ctrl.signal);
      } catch (err) {
        if (err instanceof InputError) throw err;
        if (timedOut) throw new ServiceError("timeout", `the image URL ${echo(first)} did not send its body within ${seconds} s`, undefined, param);
        return fail("broke off while sending the image");
      }
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onClientAbort);
  }
}
