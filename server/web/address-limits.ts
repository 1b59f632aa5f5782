// Rate limits per client address, for what a stranger could repeat to wear
// the room down: starting sessions (the burst lets a whole class behind one
// NAT start at once), and guessing the join code. One token bucket per
// address; the least recently seen addresses are forgotten past a bound, so
// a flood of addresses cannot grow the map without end.
import { RateLimit } from "./rate-limit.ts";

const MAX_ADDRESSES = 10_000;

export class AddressLimits {
  private readonly buckets = new Map<string, RateLimit>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes one token for `address`; false when its bucket is empty. */
  take(address: string): boolean {
    return this.bucket(address).take();
  }

  /** Whether `address` has a token left, without taking it. */
  available(address: string): boolean {
    return this.buckets.get(address)?.available() ?? true;
  }

  private bucket(address: string): RateLimit {
    let bucket = this.buckets.get(address);
    if (bucket) this.buckets.delete(address);
    else bucket = new RateLimit(this.perSecond, this.burst);
    this.buckets.set(address, bucket); // most recent last
    if (this.buckets.size > MAX_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
    return bucket;
  }
}
