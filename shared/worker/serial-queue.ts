/**
 * A first-in, first-out async lock. A session Durable Object takes it for the whole of one request (setup,
 * prefill and the streamed decode), so requests to one session run one after another while other sessions
 * (other objects) run independently. Durable Objects' input gates do not give this: they open while a request
 * awaits anything other than storage.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;
  private held = false;

  /** Waits for the lock; resolves with its release function (idempotent). */
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.tail;
    this.tail = previous.then(() => next);
    this.waiting++;
    await previous;
    this.waiting--;
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held = false;
      release();
    };
  }

  /** Requests queued behind the current holder. */
  get pending(): number {
    return this.waiting;
  }

  /** Whether a request holds the lock now. */
  get busy(): boolean {
    return this.held;
  }
}
