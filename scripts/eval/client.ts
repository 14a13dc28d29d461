/**
 * A small client for the public native API, as the eval uses it:
 *
 *   POST /v1/images    raw image body → {"image_id", …}
 *   POST /v1/generate  {"image_id", "prompt", "temperature": 0, "max_tokens", "stream": false, "session"}
 *                      → {"text", "finish_reason", "usage", "detections"?, …}
 */
import type { Detection } from "../../shared/tasks/loc-answer.ts";

/** A failed API call: HTTP status (0 when no response came) and the server's error message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The parts of a non-streaming native result the eval reads. */
export interface GenerateResult {
  readonly text: string;
  readonly finish_reason: string;
  readonly model?: string;
  readonly detections?: Detection[];
  readonly usage?: {
    readonly completion_tokens?: number;
    readonly prefix_cache?: { readonly soft_tokens?: string; readonly kv?: string };
    readonly timings?: { readonly time_to_first_token_ms?: number; readonly tokens_per_second?: number };
  };
}

/** How often one request is sent again after a 429, waiting its `retry-after` each time. */
const MAX_RATE_LIMIT_RETRIES = 30;

const MEDIA_TYPES: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg" };

/** The media type of an image file name, from its extension. */
export function mediaTypeOf(name: string): string {
  const type = MEDIA_TYPES[name.split(".").pop()?.toLowerCase() ?? ""];
  if (!type) throw new Error(`${name}: unknown image type (use .png or .jpg)`);
  return type;
}

/** Client for one server. */
export class ApiClient {
  /** @param baseUrl e.g. http://localhost:8787 @param timeoutMs per request */
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs = 120_000,
  ) {}

  /** Requests this client had to wait for and send again after a 429 (the server's rate limit). */
  retries = 0;

  private async call(path: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    for (let attempt = 0; ; attempt++) {
      try {
        response = await fetch(new URL(path, this.baseUrl), { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        const cause = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
        throw new ApiError(0, `${init.method ?? "GET"} ${path}: no response from ${this.baseUrl} (${cause})`);
      }
      if (response.status !== 429 || attempt >= MAX_RATE_LIMIT_RETRIES) break;
      await response.body?.cancel();
      this.retries++;
      const wait = Number(response.headers.get("retry-after"));
      await new Promise((r) => setTimeout(r, 1000 * (Number.isFinite(wait) && wait > 0 ? Math.min(wait, 60) : 1)));
    }
    const body = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new ApiError(response.status, `${path}: HTTP ${response.status}, not JSON: ${body.slice(0, 200)}`);
    }
    if (!response.ok) {
      const message = (json as { error?: { message?: string } }).error?.message ?? body.slice(0, 200);
      throw new ApiError(response.status, `${path}: HTTP ${response.status}: ${message}`);
    }
    return json;
  }

  /** Uploads an image once; returns its image_id. */
  async uploadImage(bytes: Uint8Array, mediaType: string): Promise<string> {
    const json = (await this.call("/v1/images", { method: "POST", headers: { "content-type": mediaType }, body: new Uint8Array(bytes) })) as {
      image_id?: unknown;
    };
    if (typeof json.image_id !== "string") throw new ApiError(200, "/v1/images: the answer has no image_id");
    return json.image_id;
  }

  /** One greedy, non-streaming generation. */
  async generate(request: { imageId: string; prompt: string; maxTokens: number; session?: string }): Promise<GenerateResult> {
    const body = {
      image_id: request.imageId,
      prompt: request.prompt,
      temperature: 0,
      max_tokens: request.maxTokens,
      stream: false,
      ...(request.session ? { session: request.session } : {}),
    };
    const json = (await this.call("/v1/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    })) as GenerateResult;
    if (typeof json.text !== "string") throw new ApiError(200, "/v1/generate: the answer has no text");
    return json;
  }
}
