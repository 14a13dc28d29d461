/**
 * The coordinator's handle on one stage: every call counted (the per-token call budget is tested against these
 * counts) and retried when the transport fails, a few times with a short backoff (a stage Worker being restarted
 * comes back within them; its lost caches are then rebuilt by replay, not here). A stage that stays unreachable
 * is a {@link ServiceError} 503 with `retry-after`: the request fails, the session and its record survive.
 */
import { stageBinding, type StageRpc } from "../api/stage-rpc.ts";
import { ConfigError, InputError, ServiceError } from "../errors.ts";
import type { ManifestStage } from "../model/manifest.ts";

/** A stage refused rows: it does not hold the cache they continue (the coordinator rebuilds it by replay). */
export class CacheLost extends Error {
  constructor(readonly stage: string) {
    super(`stage ${stage} lost the session's cache`);
  }
}

/** Counts of stage calls, by method and in all. */
export class CallCounter {
  total = 0;
  readonly byMethod: Record<string, number> = {};

  /** Records one call of `method`. */
  count(method: string): void {
    this.total++;
    this.byMethod[method] = (this.byMethod[method] ?? 0) + 1;
  }
}

/** How the coordinator calls stages. */
export interface CallPolicy {
  /** Tries per call before the stage counts as unreachable (default 3). */
  readonly attempts?: number;
  /** Wait before the second try, doubled for each further one, in ms (default 50). */
  readonly backoffMs?: number;
  /** `retry-after` of the 503 for an unreachable stage, in seconds (default 5). */
  readonly retryAfterS?: number;
}

/** One stage as the coordinator calls it. */
export class StageClient {
  constructor(
    readonly stage: ManifestStage,
    /** Absent when this worker has no binding for the stage (a call is then a deployment error). */
    private readonly rpc: StageRpc | undefined,
    private readonly counter: CallCounter,
    private readonly policy: CallPolicy = {},
  ) {}

  /** Calls `method` with `args`, counted and retried; a bad request (a stage's InputError) is not retried. */
  async call<M extends keyof StageRpc>(method: M, ...args: Parameters<StageRpc[M]>): Promise<Awaited<ReturnType<StageRpc[M]>>> {
    if (!this.rpc) throw new ConfigError(`stage ${this.stage.name} has no service binding ${stageBinding(this.stage.name)} in this worker's config`);
    const attempts = Math.max(1, this.policy.attempts ?? 3);
    let wait = this.policy.backoffMs ?? 50;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, wait));
        wait *= 2;
      }
      this.counter.count(method);
      try {
        // Called as a method: an RPC stub's property is itself a stub, so `.apply` would be a remote call.
        const rpc = this.rpc as unknown as Record<M, (...a: Parameters<StageRpc[M]>) => ReturnType<StageRpc[M]>>;
        return (await rpc[method](...args)) as Awaited<ReturnType<StageRpc[M]>>;
      } catch (err) {
        if (err instanceof InputError) throw err;
        last = err;
      }
    }
    console.error(`stage ${this.stage.name}: ${method} failed ${attempts} times:`, last);
    throw new ServiceError("unavailable", `stage ${this.stage.name} of the model is unreachable; retry later`, this.policy.retryAfterS ?? 5);
  }
}

/**
 * Every one of `calls` settled, then their values in order, or the first failure in call order: the parts of a
 * parallel cut are asked together, and a replay (after a lost cache) must not start while one is in flight.
 */
export async function settled<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  const done = await Promise.allSettled(calls);
  const failed = done.filter((d): d is PromiseRejectedResult => d.status === "rejected").map((d) => d.reason as unknown);
  if (failed.length) throw failed[0];
  return done.map((d) => (d as PromiseFulfilledResult<T>).value);
}
