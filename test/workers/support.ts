/** Helpers for the Durable Object tests: reading a session's NDJSON reply, storing soft tokens. */
import { EventReader, type DoneEvent, type TokenEvent } from "../../shared/api/events.ts";
import { SoftTokenStore } from "../../shared/worker/soft-token-store.ts";
import type { SessionReply, SessionRequest } from "../../functions/decoder/session-types.ts";

/** Greedy sampling with a token limit. */
export function greedy(maxTokens = 24): SessionRequest["sampling"] {
  return { maxTokens, temperature: 0, topK: null, topP: 1, seed: null, stop: [], logprobs: true, topLogprobs: 0 };
}

/** Reads a whole reply: its tokens and final event. */
export async function collect(reply: SessionReply): Promise<{ tokens: TokenEvent[]; done: DoneEvent }> {
  if (!reply.ok) throw new Error(`session error: ${JSON.stringify(reply.error)}`);
  const reader = new EventReader(reply.stream);
  const tokens: TokenEvent[] = [];
  for (let e = await reader.next(); e; e = await reader.next()) {
    if (e.type === "token") tokens.push(e.token);
    else if (e.type === "done") return { tokens, done: e.done };
    else throw new Error(`error event: ${e.error.message}`);
  }
  throw new Error("the stream ended without done");
}

/** Stores placeholder soft tokens for the shapes model under `imageId` (for fake-engine sessions). */
export async function storeFakeSoftTokens(kv: KVNamespace, imageId: string): Promise<void> {
  const store = new SoftTokenStore(kv, { ttlSeconds: 3600 });
  const ref = { imageSha256: "0".repeat(64), model: "paligemma-shapes", preprocess: "p1-test" };
  await store.put(imageId, ref, { data: new Float32Array(36 * 192).fill(0.5), tokens: 36, dim: 192 }, "float32");
}

/** base64 → bytes. */
export function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** Reads a streamed body until `n` token events have arrived; returns the reader and the text so far. */
export async function readTokens(res: Response, n: number): Promise<{ reader: ReadableStreamDefaultReader<Uint8Array>; text: string }> {
  const reader = res.body!.getReader();
  let text = "";
  while ((text.match(/event: token/g) ?? []).length < n) text += new TextDecoder().decode((await reader.read()).value);
  return { reader, text };
}

/** Polls a session object until it is no longer busy (up to 2 s) and returns its last description. */
export async function waitIdle<T extends { busy: boolean }>(stub: { describe(): Promise<T> }): Promise<T> {
  let info = await stub.describe();
  for (let i = 0; i < 100 && info.busy; i++) {
    await new Promise((r) => setTimeout(r, 20));
    info = await stub.describe();
  }
  return info;
}
