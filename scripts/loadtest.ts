/**
 * `npm run loadtest -- [--url http://127.0.0.1:8787] [--clients 16] [--duration 10] [--max-tokens 24]
 *                      [--image file.png] [--key KEY] [--json]`
 *
 * Drives a running server (`npm start`) with N concurrent streaming clients for a bounded time: each client
 * loops `POST /v1/generate` (`stream: true`) on its own session with an uploaded image, rotating through a few
 * prompts (so every request prefills; the image's soft tokens stay in the session), until the duration is up;
 * requests still running then finish. It prints requests, errors (by kind), p50/p95 time to first token,
 * p50/p95 tokens/s per stream (a stream's tokens over its whole time, request to `done`, as its client sees
 * it; plus the decode rate the session measured, from `usage.timings`), and the total tokens/s over the run.
 * Exit status 1 when any request failed.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createParser } from "eventsource-parser";
import { encode as encodePng } from "fast-png";

/** What to run. */
export interface LoadOptions {
  readonly url: string;
  readonly clients: number;
  readonly durationS: number;
  readonly maxTokens: number;
  readonly prompts: readonly string[];
  /** PNG, JPEG, WebP or GIF bytes; default: a drawn 96×96 shape. */
  readonly image?: Uint8Array;
  /** API key (Authorization: Bearer). */
  readonly key?: string;
  /** Limit for one request, in seconds. */
  readonly requestTimeoutS: number;
}

/** p50 and p95 of a sample. */
export interface Quantiles {
  readonly p50: number;
  readonly p95: number;
}

/** The result of a run. */
export interface LoadReport {
  readonly clients: number;
  readonly durationS: number;
  readonly requests: number;
  readonly completed: number;
  readonly errors: number;
  readonly errorKinds: Record<string, number>;
  /** The first error message seen of each kind (the server's `error.message` where it sent one). */
  readonly errorMessages: Record<string, string>;
  readonly ttftMs: Quantiles;
  /** Tokens over the time from request to `done`, per stream. */
  readonly tokensPerSecondPerStream: Quantiles;
  /** The session's decode rate (usage.timings.tokens_per_second), per stream. */
  readonly decodeTokensPerSecond: Quantiles;
  readonly totalTokens: number;
  readonly totalTokensPerSecond: number;
}

/** Defaults of the command line. */
export const LOAD_DEFAULTS = Object.freeze({
  url: "http://127.0.0.1:8787",
  clients: 16,
  durationS: 10,
  maxTokens: 24,
  prompts: ["caption en", "answer en how many shapes are there", "detect circle", "answer en what color is the circle"],
  requestTimeoutS: 120,
});

/** A 96×96 white PNG with a green disc and a blue square: the kind of image the default model knows. */
export function drawnImage(): Uint8Array {
  const size = 96;
  const data = new Uint8Array(size * size * 3).fill(255);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = 3 * (y * size + x);
      if ((x - 30) ** 2 + (y - 30) ** 2 < 16 ** 2) data.set([0, 160, 0], o);
      else if (x > 55 && x < 85 && y > 55 && y < 85) data.set([0, 0, 200], o);
    }
  }
  return encodePng({ width: size, height: size, data, channels: 3, depth: 8 });
}

/** Nearest-rank quantile of `values` (0 for none). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

interface Sample {
  readonly ok: boolean;
  readonly kind?: string;
  readonly message?: string;
  readonly ttftMs?: number;
  readonly tokens: number;
  readonly tokensPerSecond?: number;
  readonly decodeTokensPerSecond?: number;
}

function headers(opts: LoadOptions, type: string): Record<string, string> {
  return { "content-type": type, ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}) };
}

/** One streamed generation, timed on the client. */
async function streamOnce(opts: LoadOptions, imageId: string, session: string, prompt: string): Promise<Sample> {
  const t0 = performance.now();
  let first: number | undefined;
  let tokens = 0;
  let end: "done" | string | undefined;
  let decodeRate: number | undefined;
  let message: string | undefined;
  try {
    const res = await fetch(`${opts.url}/v1/generate`, {
      method: "POST",
      headers: { ...headers(opts, "application/json"), "x-session-id": session },
      body: JSON.stringify({ image_id: imageId, prompt, max_tokens: opts.maxTokens, stream: true }),
      signal: AbortSignal.timeout(opts.requestTimeoutS * 1000),
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => "");
      return { ok: false, kind: `http_${res.status}`, message: text.slice(0, 500), tokens: 0 };
    }
    const parser = createParser({
      onEvent: (e) => {
        if (e.event === "token") {
          first ??= performance.now();
          tokens++;
        } else if (e.event === "done") {
          end = "done";
          decodeRate = (JSON.parse(e.data) as { usage?: { timings?: { tokens_per_second?: number } } }).usage?.timings?.tokens_per_second;
        }
        else if (e.event === "error") {
          const error = (JSON.parse(e.data) as { error: { type: string; message: string } }).error;
          end = `event_${error.type}`;
          message = error.message;
        }
      },
    });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) parser.feed(decoder.decode(r.value, { stream: true }));
  } catch (err) {
    return { ok: false, kind: (err as Error).name === "TimeoutError" ? "timeout" : "network", message: String(err), tokens };
  }
  if (end !== "done") return { ok: false, kind: end ?? "truncated", message, tokens };
  const tokensPerSecond = (tokens * 1000) / (performance.now() - t0);
  return { ok: true, ttftMs: first === undefined ? undefined : first - t0, tokens, tokensPerSecond, decodeTokensPerSecond: decodeRate };
}

/** Uploads the image once and returns its id. */
async function upload(opts: LoadOptions): Promise<string> {
  const res = await fetch(`${opts.url}/v1/images`, { method: "POST", headers: headers(opts, "image/png"), body: (opts.image ?? drawnImage()) as Uint8Array<ArrayBuffer> });
  const body = (await res.json()) as { image_id?: string; error?: { message: string } };
  if (!res.ok || !body.image_id) throw new Error(`image upload failed: ${res.status} ${body.error?.message ?? ""}`);
  return body.image_id;
}

/** Runs the load and summarises it. */
export async function runLoadTest(opts: LoadOptions): Promise<LoadReport> {
  const imageId = await upload(opts);
  const run = Math.random().toString(36).slice(2, 8);
  const samples: Sample[] = [];
  const start = performance.now();
  const deadline = start + opts.durationS * 1000;
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, client) => {
      for (let i = 0; performance.now() < deadline; i++) {
        samples.push(await streamOnce(opts, imageId, `load-${run}-${client}`, opts.prompts[(client + i) % opts.prompts.length]));
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1000;
  const ok = samples.filter((s) => s.ok);
  const errorKinds: Record<string, number> = {};
  const errorMessages: Record<string, string> = {};
  for (const s of samples) {
    if (s.ok) continue;
    errorKinds[s.kind!] = (errorKinds[s.kind!] ?? 0) + 1;
    errorMessages[s.kind!] ??= s.message ?? "";
  }
  const ttft = ok.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs]));
  const tps = ok.flatMap((s) => (s.tokensPerSecond === undefined ? [] : [s.tokensPerSecond]));
  const decode = ok.flatMap((s) => (s.decodeTokensPerSecond ? [s.decodeTokensPerSecond] : []));
  const totalTokens = samples.reduce((n, s) => n + s.tokens, 0);
  return {
    clients: opts.clients,
    durationS: round(elapsedS),
    requests: samples.length,
    completed: ok.length,
    errors: samples.length - ok.length,
    errorKinds,
    errorMessages,
    ttftMs: { p50: round(quantile(ttft, 0.5)), p95: round(quantile(ttft, 0.95)) },
    tokensPerSecondPerStream: { p50: round(quantile(tps, 0.5)), p95: round(quantile(tps, 0.95)) },
    decodeTokensPerSecond: { p50: round(quantile(decode, 0.5)), p95: round(quantile(decode, 0.95)) },
    totalTokens,
    totalTokensPerSecond: round(totalTokens / elapsedS),
  };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** The report as a few lines of text. */
export function formatReport(r: LoadReport): string {
  const kinds = Object.entries(r.errorKinds).map(([k, n]) => `${k}: ${n}`).join(", ");
  return [
    `clients ${r.clients}, ${r.durationS} s`,
    `requests ${r.requests}, completed ${r.completed}, errors ${r.errors}${kinds ? ` (${kinds})` : ""}`,
    `time to first token  p50 ${r.ttftMs.p50} ms, p95 ${r.ttftMs.p95} ms`,
    `tokens/s per stream  p50 ${r.tokensPerSecondPerStream.p50}, p95 ${r.tokensPerSecondPerStream.p95} (request to done)`,
    `decode tokens/s      p50 ${r.decodeTokensPerSecond.p50}, p95 ${r.decodeTokensPerSecond.p95} (measured in the session)`,
    `total ${r.totalTokens} tokens, ${r.totalTokensPerSecond} tokens/s`,
    ...Object.entries(r.errorMessages).map(([k, m]) => `first ${k}: ${m}`),
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: LOAD_DEFAULTS.url },
      clients: { type: "string", default: String(LOAD_DEFAULTS.clients) },
      duration: { type: "string", default: String(LOAD_DEFAULTS.durationS) },
      "max-tokens": { type: "string", default: String(LOAD_DEFAULTS.maxTokens) },
      image: { type: "string" },
      key: { type: "string", default: process.env.PALIGEMMA_API_KEY },
      json: { type: "boolean", default: false },
    },
  });
  const positive = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} must be a positive number, got ${v}`);
    return n;
  };
  const report = await runLoadTest({
    url: values.url!.replace(/\/+$/, ""),
    clients: Math.floor(positive("clients", values.clients)),
    durationS: positive("duration", values.duration),
    maxTokens: Math.floor(positive("max-tokens", values["max-tokens"])),
    prompts: LOAD_DEFAULTS.prompts,
    image: values.image ? new Uint8Array(readFileSync(values.image)) : undefined,
    key: values.key,
    requestTimeoutS: LOAD_DEFAULTS.requestTimeoutS,
  });
  process.stdout.write(`${values.json ? JSON.stringify(report) : formatReport(report)}\n`);
  process.exitCode = report.errors > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`loadtest: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
}
