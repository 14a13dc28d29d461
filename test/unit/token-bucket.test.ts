/** The token bucket's stored state: a bucket rebuilt from it decides exactly as the one that kept running. */
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../shared/worker/token-bucket.ts";

const LIMIT = { perMinute: 60, burst: 3 };

describe("TokenBucket state", () => {
  it("restores to the same decisions, and says when it is full again", () => {
    const kept = new TokenBucket();
    expect(kept.state()).toBeNull();
    const times = [0, 10, 20, 500, 1200, 1300, 5000, 5001, 5002, 5003];
    let restored = new TokenBucket();
    for (const t of times) {
      const a = kept.take(LIMIT, t);
      const b = restored.take(LIMIT, t);
      expect(b).toEqual(a);
      restored = new TokenBucket(JSON.parse(JSON.stringify(restored.state()))); // stored and read back each time
    }
    expect(kept.state()).toEqual(restored.state());
    // After the takes at 5000..5003 (4th refused) the bucket holds ~0.003 tokens: full 3 tokens' time later.
    expect(kept.fullAt(LIMIT)).toBe(5003 + Math.ceil((3 - kept.state()!.tokens) * 1000));
    expect(new TokenBucket(kept.state()).take(LIMIT, kept.fullAt(LIMIT))).toEqual({ ok: true, remaining: 2, retryAfterS: 0 });
  });

  it("ignores a state that is not numbers (a full bucket)", () => {
    const b = new TokenBucket({ tokens: Number.NaN, last: 0 });
    expect(b.state()).toBeNull();
    expect(b.take(LIMIT, 0)).toEqual({ ok: true, remaining: 2, retryAfterS: 0 });
  });
});
