/**
 * Everything a session Durable Object does, behind plain interfaces so that Node route tests can run the same
 * code in-process: a FIFO lock held for the whole request (setup and stream), the session core, persistence of
 * the session record, and turning a prepared run into an NDJSON stream that aborts when its reader cancels.
 */
import { eventStream } from "../../shared/worker/event-stream.ts";
import { errorResponseBody } from "../../shared/worker/http-errors.ts";
import { SerialQueue } from "../../shared/worker/serial-queue.ts";
import { SessionCore, type SessionCoreDeps } from "./session-core.ts";
import type { SessionInfo, SessionRecord, SessionReply, SessionRequest } from "./session-types.ts";

/** Durable storage of one session (Durable Object storage; a Map in tests). */
export interface SessionStorage {
  save(record: SessionRecord): Promise<void>;
  clear(): Promise<void>;
}

/** One session: serialised requests over a {@link SessionCore}. */
export class SessionHost {
  private readonly queue = new SerialQueue();
  private readonly core: SessionCore;
  private name: string | null = null;

  /** @param record the stored record, loaded before the first request */
  constructor(
    deps: Omit<SessionCoreDeps, "save">,
    private readonly storage: SessionStorage,
    record: SessionRecord | null,
  ) {
    this.core = new SessionCore({ ...deps, save: (r) => storage.save(r) }, record);
  }

  /** Runs one request; the lock is held until its stream ends, errors or is cancelled. */
  async generate(req: SessionRequest): Promise<SessionReply> {
    const release = await this.queue.acquire();
    const abort = new AbortController();
    try {
      this.name = req.session;
      const run = await this.core.prepare(req, abort.signal);
      return { ok: true, info: run.info, stream: eventStream(run.events, abort, release) };
    } catch (err) {
      release();
      const { status, body } = errorResponseBody(err);
      if (status >= 500) console.error("session prepare:", err);
      return { ok: false, error: { status, ...body.error } };
    }
  }

  /** The session's state. */
  describe(): SessionInfo {
    return {
      session: this.name,
      record: this.core.stored,
      memory: this.core.memoryInfo,
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
