/**
 * Rate limiting per API key (or per client IP when the API is open): a token bucket in a Durable Object, one
 * object per key, so every isolate and location counts against the same bucket. When the deployment binds
 * Workers' rate limiting API as `RATE_LIMITER` that is used instead (its limit and period live in
 * wrangler.toml, and it answers without a retry time, so `retry-after` is its period).
 *
 * The bucket lives in the object's memory: an evicted object starts again with a full bucket, which errs on
 * the side of serving.
 */
import { DurableObject } from "cloudflare:workers";
import { TokenBucket, type BucketLimit, type RateDecision } from "../../shared/worker/token-bucket.ts";

/** Period of the Workers rate limiting binding (wrangler.toml `simple.period`), for `retry-after`. */
const BINDING_PERIOD_S = 60;

/** The bindings rate limiting reads. */
export interface RateLimitEnv {
  /** One token bucket per API key (or client IP when open). */
  readonly RATE_LIMITS?: DurableObjectNamespace<RateLimiterObject>;
  /** Workers' rate limiting binding; used instead of RATE_LIMITS when bound. */
  readonly RATE_LIMITER?: RateLimit;
}

/** One key's token bucket (it reads no env). */
export class RateLimiterObject extends DurableObject {
  private readonly bucket = new TokenBucket();

  /** Takes one request from the bucket under `limit`. */
  take(limit: BucketLimit): RateDecision {
    return this.bucket.take(limit, Date.now());
  }
}

/** Decides one request for `key` (e.g. "key:<owner>" or "ip:<address>") under `limit`. */
export async function takeRateLimit(env: RateLimitEnv, key: string, limit: BucketLimit): Promise<RateDecision> {
  if (limit.perMinute <= 0) return { ok: true, remaining: limit.burst, retryAfterS: 0 };
  if (env.RATE_LIMITER) {
    const { success } = await env.RATE_LIMITER.limit({ key });
    return success ? { ok: true, remaining: 0, retryAfterS: 0 } : { ok: false, remaining: 0, retryAfterS: BINDING_PERIOD_S };
  }
  if (!env.RATE_LIMITS) throw new Error("RATE_LIMITS (Durable Object binding) is missing; set RATE_LIMIT_RPM = \"0\" to run without rate limits");
  const stub = env.RATE_LIMITS.get(env.RATE_LIMITS.idFromName(key));
  return stub.take(limit);
}
