/**
 * Everything a session Durable Object does, behind plain interfaces so that Node route tests can run the same
 * code in-process: a FIFO lock held for the whole request (setup and stream), the session core, persistence of
 * the session record, and turning a prepared run into an NDJSON stream that aborts when its reader cancels.
 *
 * Limits (limits.ts): at most `maxRequests` requests per session at once (running and queued; more are a 429),
 * a wait for the lock of at most 2 × `requestTimeoutMs` (one full request ahead; then a 429), and a stream that
 * ends with a `timeout` error `requestTimeoutMs` after it got the lock, or after `idleMs` without a read, so no client can hold a session forever.
 */
import { eventStream } from "../../shared/worker/event-stream.ts";
import { errorData, RateLimitedError, type ErrorData } from "../../shared/errors.ts";
import { SerialQueue } from "../../shared/worker/serial-queue.ts";
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from "./limits.ts";
import { SessionCore, type SessionCoreDeps } from "./session-core.ts";
import type { SessionInfo, SessionRecord, SessionReply, SessionRequest } from "./session-types.ts";

/** Durable storage of one session (Durable Object storage; a Map in tests). */
export interface SessionStorage {
  save(record: SessionRecord): Promise<void>;
  clear(): Promise<void>;
}

/** An error as RPC data (logged when it is the service's fault). */
function replyError(err: unknown, requestId?: string): ErrorData {
  const data = errorData(err);
  if (data.status >= 500) console.error(`session prepare (request ${requestId ?? "?"}):`, err);
  return data;
}

/** One session: serialised requests over a {@link SessionCore}. */
export class SessionHost {
  private readonly queue = new SerialQueue();
  private readonly core: SessionCore;
  private name: string | null = null;
  /** The run holding the lock, by its id, so that {@link cancel} can stop it. */
  private running: { readonly id: string; readonly abort: AbortController } | null = null;

  /** @param record the stored record, loaded before the first request */
  constructor(
    deps: Omit<SessionCoreDeps, "save" | "limits">,
    private readonly storage: SessionStorage,
    record: SessionRecord | null,
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
  ) {
    this.core = new SessionCore({ ...deps, limits, save: (r) => storage.save(r) }, record);
  }

  /** Runs one request; the lock is held until its stream ends, errors, is cancelled or times out. */
  async generate(req: SessionRequest): Promise<SessionReply> {
    const { maxRequests, requestTimeoutMs, idleTimeoutMs } = this.limits;
    const inFlight = (this.queue.busy ? 1 : 0) + this.queue.pending;
    if (inFlight >= maxRequests) {
      const err = new RateLimitedError(`the session is busy: ${inFlight} requests are running or waiting (at most ${maxRequests})`, 1, "session");
      return { ok: false, error: replyError(err) };
    }
    // A queued request may wait for the one ahead of it to use its whole time limit, then gets its own.
    const release = await this.queue.acquireWithin(2 * requestTimeoutMs);
    const started = Date.now();
    if (release === null) {
      const err = new RateLimitedError(`the session stayed busy for ${2 * requestTimeoutMs} ms; try again later`, 1, "session");
      return { ok: false, error: replyError(err) };
    }
    const abort = new AbortController();
    const running = { id: req.runId ?? "", abort };
    this.running = running;
    const done = (): void => {
      if (this.running === running) this.running = null;
      if (req.session === null) this.core.clear(); // a transient session: nobody can come back to its cache
      release();
    };
    try {
      this.name = req.session;
      const run = await this.core.prepare(req, abort.signal);
      const deadlineMs = Math.max(1, requestTimeoutMs - (Date.now() - started));
      return { ok: true, info: run.info, stream: eventStream(run.events, abort, done, { deadlineMs, idleMs: idleTimeoutMs }) };
    } catch (err) {
      done();
      return { ok: false, error: replyError(err, req.requestId) };
    }
  }

  /** Stops run `runId` if it holds the session now: its stream ends and the lock is released at once. */
  cancel(runId: string): void {
    if (runId && this.running?.id === runId) this.running.abort.abort();
  }

  /** The session's state. */
  describe(): SessionInfo {
    return {
      session: this.name,
      record: this.core.stored,
      memory: this.core.memoryInfo,
      engine: this.core.engineInfo,
      busy: this.queue.busy,
      queued: this.queue.pending,
      last_run: this.core.lastRun,
    };
  }

  /** Deletes the session (storage and memory), waiting for a running request to finish first. */
  async clear(): Promise<void> {
    const release = await this.queue.acquire();
    try {
      this.core.clear();
      await this.storage.clear();
    } finally {
      release();
    }
  }
}
