/**
 * Chooses which instances to dial, and when to retry a failed one.
 *
 * Each URL that failed waits before the next attempt: `redialMinMs` after the
 * first failure, doubling up to `redialMaxMs`, and each delay is drawn
 * uniformly between half and all of that value ("equal jitter"), so that
 * instances that lost the same peer do not all redial at the same moment.
 *
 * @module
 */

import { shuffle } from "./rumors.ts";

/** Settings of a {@link DialPlanner}. */
export interface DialSettings {
  readonly redialMinMs: number;
  readonly redialMaxMs: number;
}

interface Backoff {
  failures: number;
  nextAttemptMs: number;
}

/**
 * Dial bookkeeping by URL.
 *
 * @example
 * ```ts
 * import { DialPlanner } from "./dial_planner.ts";
 * const planner = new DialPlanner({ redialMinMs: 100, redialMaxMs: 1000 }, () => 0.5);
 * planner.choose(["http://a", "http://b"], 1, 0).length; // 1
 * ```
 */
export class DialPlanner {
  readonly #settings: DialSettings;
  readonly #random: () => number;
  readonly #backoff = new Map<string, Backoff>();
  readonly #dialing = new Set<string>();

  constructor(settings: DialSettings, random: () => number) {
    this.#settings = settings;
    this.#random = random;
  }

  /** Dials started and not yet finished. */
  get dialing(): number {
    return this.#dialing.size;
  }

  /** Whether a dial to `url` is in progress. */
  isDialing(url: string): boolean {
    return this.#dialing.has(url);
  }

  /**
   * Picks up to `count` URLs that are neither being dialled nor waiting out
   * a backoff, at random, and marks them as being dialled.
   */
  choose(candidates: readonly string[], count: number, nowMs: number) {
    if (count <= 0) return [];
    const ready = candidates.filter((url) =>
      !this.#dialing.has(url) &&
      (this.#backoff.get(url)?.nextAttemptMs ?? 0) <= nowMs
    );
    const chosen = shuffle([...new Set(ready)], this.#random).slice(0, count);
    for (const url of chosen) this.#dialing.add(url);
    return chosen;
  }

  /** Records a link that opened; clears the URL's backoff. */
  succeeded(url: string): void {
    this.#dialing.delete(url);
    this.#backoff.delete(url);
  }

  /** Records a failed dial and schedules the next attempt. */
  failed(url: string, nowMs: number): void {
    this.#dialing.delete(url);
    const failures = (this.#backoff.get(url)?.failures ?? 0) + 1;
    const ceiling = Math.min(
      this.#settings.redialMaxMs,
      this.#settings.redialMinMs * 2 ** Math.min(failures - 1, 30),
    );
    const delay = ceiling / 2 + this.#random() * ceiling / 2;
    this.#backoff.set(url, { failures, nextAttemptMs: nowMs + delay });
  }

  /** Consecutive failures of a URL. */
  failures(url: string): number {
    return this.#backoff.get(url)?.failures ?? 0;
  }
}
