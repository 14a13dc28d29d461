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

  /**
   * {@link acquire} that gives up after `ms`: resolves null then. A waiter that gave up keeps its place and
   * passes the lock on at once when its turn comes, so the order of the others is kept.
   */
  async acquireWithin(ms: number): Promise<(() => void) | null> {
    const acquiring = this.acquire();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    const winner = await Promise.race([acquiring, expired]);
    clearTimeout(timer);
    if (winner === null) void acquiring.then((release) => release());
    return winner;
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
