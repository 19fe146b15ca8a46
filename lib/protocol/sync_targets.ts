/**
 * Chooses the peer of each anti-entropy round, and backs off from HTTP
 * targets that failed.
 *
 * Each round picks one peer uniformly among every instance this node can
 * reach: linked peers over their WebSocket link, every other known instance
 * and seed over HTTP. Anti-entropy thus never depends on which links happen
 * to be up. After a partition heals, a round reaches the other side as soon
 * as that side is reachable over HTTP, even while the links are still
 * waiting out their redial delays. memberlist's push-pull sync picks its
 * partner among all live members for the same reason.
 *
 * A URL whose HTTP session failed is skipped for a while. The delay is
 * `redialMinMs` after the first failure and doubles up to `redialMaxMs` or
 * four anti-entropy intervals, whichever is shorter. Each delay is drawn
 * between half and all of that value, the same "equal jitter" as redials. Rounds then rarely go to
 * an unreachable instance. After a partition heals, each pair of instances
 * across the former cut retries at its own time, so with a few instances
 * per side the first retry comes well within one interval.
 *
 * @module
 */

/** The peer of one anti-entropy round. */
export type SyncTarget =
  | { readonly via: "ws"; readonly peer: string }
  | { readonly via: "http"; readonly url: string };

/** Settings of {@link SyncTargets}. */
export interface SyncTargetSettings {
  readonly redialMinMs: number;
  readonly redialMaxMs: number;
  readonly antiEntropyIntervalMs: number;
}

interface Backoff {
  failures: number;
  nextAttemptMs: number;
}

/**
 * Anti-entropy peer choice with per-URL backoff for HTTP sessions.
 *
 * @example
 * ```ts
 * import { SyncTargets } from "./sync_targets.ts";
 * const targets = new SyncTargets(
 *   { redialMinMs: 100, redialMaxMs: 1000, antiEntropyIntervalMs: 500 },
 *   () => 0.9,
 * );
 * targets.choose({ linked: ["b"], urls: ["http://c"], httpBusy: false }, 0);
 * // { via: "http", url: "http://c" }
 * ```
 */
export class SyncTargets {
  readonly #settings: SyncTargetSettings;
  readonly #random: () => number;
  readonly #backoff = new Map<string, Backoff>();

  constructor(settings: SyncTargetSettings, random: () => number) {
    this.#settings = settings;
    this.#random = random;
  }

  /**
   * Picks one target uniformly among `linked` peer ids and those `urls` not
   * waiting out a backoff; URLs are left out while `httpBusy`. Returns
   * `undefined` when there is nothing to pick.
   */
  choose(
    candidates: {
      readonly linked: readonly string[];
      readonly urls: readonly string[];
      readonly httpBusy: boolean;
    },
    nowMs: number,
  ): SyncTarget | undefined {
    const ready = candidates.httpBusy
      ? []
      : [...new Set(candidates.urls)].filter((url) =>
        (this.#backoff.get(url)?.nextAttemptMs ?? 0) <= nowMs
      );
    const total = candidates.linked.length + ready.length;
    if (total === 0) return undefined;
    const pick = Math.floor(this.#random() * total);
    if (pick < candidates.linked.length) {
      return { via: "ws", peer: candidates.linked[pick]! };
    }
    return { via: "http", url: ready[pick - candidates.linked.length]! };
  }

  /** Records an HTTP session that completed; clears the URL's backoff. */
  succeeded(url: string): void {
    this.#backoff.delete(url);
  }

  /** Records an HTTP session that failed and delays the next one. */
  failed(url: string, nowMs: number): void {
    const failures = (this.#backoff.get(url)?.failures ?? 0) + 1;
    const { redialMinMs, redialMaxMs, antiEntropyIntervalMs } = this.#settings;
    const ceiling = Math.min(
      redialMaxMs,
      Math.max(redialMinMs, 4 * antiEntropyIntervalMs),
      redialMinMs * 2 ** Math.min(failures - 1, 30),
    );
    const delay = ceiling / 2 + this.#random() * ceiling / 2;
    this.#backoff.set(url, { failures, nextAttemptMs: nowMs + delay });
  }

  /** Consecutive failed HTTP sessions with a URL. */
  failures(url: string): number {
    return this.#backoff.get(url)?.failures ?? 0;
  }

  /** Time before which a URL is skipped, or 0 when it is not backed off. */
  nextAttemptMs(url: string): number {
    return this.#backoff.get(url)?.nextAttemptMs ?? 0;
  }
}
