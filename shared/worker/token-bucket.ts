/**
 * A token bucket (rate limiting): holds at most `burst` tokens and refills `perMinute` tokens a minute; each
 * request takes one. A pure object with an injected clock, so the Durable Object that owns one per key and the
 * Node tests run the same arithmetic.
 */

/** Limits of one bucket. */
export interface BucketLimit {
  /** Sustained requests per minute; 0 turns rate limiting off. */
  readonly perMinute: number;
  /** Requests allowed at once after an idle period (the bucket's size). */
  readonly burst: number;
}

/** The answer for one request. */
export interface RateDecision {
  readonly ok: boolean;
  /** Tokens left after this request (whole). */
  readonly remaining: number;
  /** When refused: whole seconds until a token is available (≥ 1). 0 when allowed. */
  readonly retryAfterS: number;
}

/** What a bucket must keep to carry on exactly where it stopped (a Durable Object stores it). */
export interface BucketState {
  /** Tokens left at `last` (fractional). */
  readonly tokens: number;
  /** Unix milliseconds of the last take. */
  readonly last: number;
}

/** One key's bucket. */
export class TokenBucket {
  private tokens: number | null = null;
  private last = 0;

  /** @param state what {@link state} returned before (absent: a full bucket) */
  constructor(state?: BucketState | null) {
    if (state && Number.isFinite(state.tokens) && Number.isFinite(state.last)) {
      this.tokens = state.tokens;
      this.last = state.last;
    }
  }

  /** The bucket's state after its last take; null before the first. */
  state(): BucketState | null {
    return this.tokens === null ? null : { tokens: this.tokens, last: this.last };
  }

  /** When the bucket is full again under `limit` (Unix ms); then it is the same as a new one. */
  fullAt(limit: BucketLimit): number {
    if (this.tokens === null || limit.perMinute <= 0) return this.last;
    const missing = Math.max(0, Math.max(1, limit.burst) - this.tokens);
    return this.last + Math.ceil((missing * 60_000) / limit.perMinute);
  }

  /** Takes `cost` tokens at time `nowMs` under `limit`. */
  take(limit: BucketLimit, nowMs: number, cost = 1): RateDecision {
    if (limit.perMinute <= 0) return { ok: true, remaining: limit.burst, retryAfterS: 0 };
    const perMs = limit.perMinute / 60_000;
    const capacity = Math.max(1, limit.burst);
    const elapsed = this.tokens === null ? 0 : Math.max(0, nowMs - this.last);
    this.tokens = Math.min(capacity, (this.tokens ?? capacity) + elapsed * perMs);
    this.last = nowMs;
    if (this.tokens >= cost) {
      this.tokens -= cost;
      return { ok: true, remaining: Math.floor(this.tokens), retryAfterS: 0 };
    }
    const waitMs = (cost - this.tokens) / perMs;
    return { ok: false, remaining: 0, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
}
