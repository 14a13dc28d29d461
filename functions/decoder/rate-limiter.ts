/**
 * Rate limiting per API key (or per client IP when the API is open): a token bucket in a Durable Object, one
 * object per key, so every isolate and location counts against the same bucket. When the deployment binds
 * Workers' rate limiting API as `RATE_LIMITER` that is used instead (its limit and period live in
 * wrangler.toml, and it answers without a retry time, so `retry-after` is its period).
 *
 * The bucket's state is stored in the object (key "bucket") after every take and restored in
 * `blockConcurrencyWhile`, so an evicted object carries on with the tokens it had. An alarm deletes the record
 * once the bucket would be full again (a full bucket is what a new object starts with), so idle keys and IPs
 * leave nothing behind.
 */
import { DurableObject } from "cloudflare:workers";
import { TokenBucket, type BucketLimit, type BucketState, type RateDecision } from "../../shared/worker/token-bucket.ts";

/** Period of the Workers rate limiting binding (wrangler.toml `simple.period`), for `retry-after`. */
const BINDING_PERIOD_S = 60;

/** The bindings rate limiting reads. */
export interface RateLimitEnv {
  /** One token bucket per API key (or client IP when open). */
  readonly RATE_LIMITS?: DurableObjectNamespace<RateLimiterObject>;
  /** Workers' rate limiting binding; used instead of RATE_LIMITS when bound. */
  readonly RATE_LIMITER?: RateLimit;
}

const BUCKET_KEY = "bucket";

/** One key's token bucket (it reads no env). */
export class RateLimiterObject extends DurableObject<object> {
  private bucket = new TokenBucket();

  constructor(ctx: DurableObjectState, env: object) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.bucket = new TokenBucket(await ctx.storage.get<BucketState>(BUCKET_KEY));
    });
  }

  /** Takes one request from the bucket under `limit`, storing what is left. */
  async take(limit: BucketLimit): Promise<RateDecision> {
    const decision = this.bucket.take(limit, Date.now());
    const state = this.bucket.state();
    if (state === null) return decision; // limits off: nothing counted
    await this.ctx.storage.put(BUCKET_KEY, state);
    await this.ctx.storage.setAlarm(this.bucket.fullAt(limit));
    return decision;
  }

  /** The bucket has refilled: forget it (the next take starts from a full bucket, as it would from this state). */
  override async alarm(): Promise<void> {
    this.bucket = new TokenBucket();
    await this.ctx.storage.deleteAll();
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
