// A token bucket per socket and kind of message: `burst` messages may come at
// once, then `perSecond` on average. Cheap enough to run on every message; it
// keeps one browser from flooding the server (or its own pty) with events.
export class RateLimit {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Take one token; false when the bucket is empty (the message is to be refused). */
  take(): boolean {
    if (!this.available()) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there (refilled for the time passed), without taking it. */
  available(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    return this.tokens >= 1;
  }
}

/**
 * A refusal told to a socket at most once a second, so that a flood of bad
 * messages does not become a flood of replies.
 */
export function throttledRefusal(tell: (message: string) => void): (message: string) => void {
  let last = 0;
  return (message) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    tell(message);
  };
}
