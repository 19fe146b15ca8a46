/**
 * Rate limits: a token bucket, token buckets by client address with a
 * bounded table, and counts of open connections by address.
 *
 * @module
 */

/**
 * A token bucket: `ratePerSecond` tokens flow in per second, up to `burst`.
 * Each event takes one token; an event that finds none is over the limit.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 * let now = 0;
 * const bucket = new TokenBucket(10, 2, () => now);
 * bucket.take(); // true
 * bucket.take(); // true
 * bucket.take(); // false: the burst of 2 is used up
 * now = 100;
 * bucket.take(); // true: 100 ms at 10 per second refilled one token
 * ```
 */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedMs: number;

  constructor(
    ratePerSecond: number,
    burst: number,
    now: () => number = Date.now,
  ) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#updatedMs = now();
  }

  /** Takes one token; returns false when none is left. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether the bucket is full, so forgetting it changes nothing. */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.#burst;
  }

  /** Seconds until the next token, rounded up; 0 when one is there. */
  get retryAfterSeconds(): number {
    this.#refill();
    if (this.#tokens >= 1) return 0;
    return Math.ceil((1 - this.#tokens) / this.#ratePerMs / 1000);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#updatedMs);
    this.#updatedMs = now;
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + elapsed * this.#ratePerMs,
    );
  }
}

/**
 * Token buckets by client address. The table holds at most `maxAddresses`
 * buckets: when it is full, full buckets (idle clients) are forgotten
 * first, then the oldest, so a flood of new addresses cannot grow it.
 */
export class AddressRateLimiter {
  readonly #ratePerSecond: number;
  readonly #burst: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(options: {
    ratePerSecond: number;
    burst: number;
    maxAddresses?: number;
    now?: () => number;
  }) {
    this.#ratePerSecond = options.ratePerSecond;
    this.#burst = options.burst;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Counts one request from `address`. Returns 0 when it is allowed, else
   * the seconds the client should wait (for a `Retry-After` header).
   */
  take(address: string): number {
    let bucket = this.#buckets.get(address);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxAddresses) this.#evict();
      bucket = new TokenBucket(this.#ratePerSecond, this.#burst, this.#now);
      this.#buckets.set(address, bucket);
    }
    if (bucket.take()) return 0;
    return Math.max(1, bucket.retryAfterSeconds);
  }

  #evict(): void {
    for (const [address, bucket] of this.#buckets) {
      if (bucket.full) this.#buckets.delete(address);
    }
    while (this.#buckets.size >= this.#maxAddresses) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
  }
}

/** Counts of open connections by remote address. */
export class AddressCounter {
  readonly #counts = new Map<string, number>();

  /** Open connections from an address. */
  count(address: string): number {
    return this.#counts.get(address) ?? 0;
  }

  /** Records one more open connection. */
  open(address: string): void {
    this.#counts.set(address, this.count(address) + 1);
  }

  /** Records that one connection from an address closed. */
  close(address: string): void {
    const count = this.count(address) - 1;
    if (count > 0) this.#counts.set(address, count);
    else this.#counts.delete(address);
  }
}
