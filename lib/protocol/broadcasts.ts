/**
 * The queue of membership updates that ride along on outgoing frames.
 *
 * Each update is sent a bounded number of times, least sent first, like a
 * rumor. Newer news about a member replaces the queued update about it, as
 * in memberlist's broadcast queue.
 *
 * @module
 */

import type { MemberUpdate } from "./messages.ts";

interface Queued {
  update: MemberUpdate;
  transmits: number;
}

/**
 * Membership updates waiting to be piggybacked.
 *
 * @example
 * ```ts
 * import { BroadcastQueue } from "./broadcasts.ts";
 * const queue = new BroadcastQueue(100);
 * queue.enqueue({ id: "b", region: "eu", url: null, incarnation: 1, state: "suspect" });
 * queue.take(8, 2).length; // 1
 * queue.take(8, 2).length; // 1, then it has been sent twice
 * queue.size; // 0
 * ```
 */
export class BroadcastQueue {
  readonly #items = new Map<string, Queued>();
  readonly #capacity: number;

  /** @param capacity updates held at most; past it the most sent is dropped */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Updates waiting. */
  get size(): number {
    return this.#items.size;
  }

  /** Queues an update, replacing any queued update about the same member. */
  enqueue(update: MemberUpdate): void {
    this.#items.delete(update.id);
    if (this.#items.size >= this.#capacity) {
      let victim: [string, Queued] | undefined;
      for (const item of this.#items) {
        if (!victim || item[1].transmits > victim[1].transmits) victim = item;
      }
      if (victim) this.#items.delete(victim[0]);
    }
    this.#items.set(update.id, { update, transmits: 0 });
  }

  /**
   * Takes up to `max` updates for one frame, least sent first, and drops
   * those that reached `limit` sends.
   */
  take(max: number, limit: number): MemberUpdate[] {
    if (this.#items.size === 0) return [];
    const chosen = [...this.#items.values()]
      .sort((a, b) => a.transmits - b.transmits)
      .slice(0, max);
    for (const item of chosen) {
      item.transmits++;
      if (item.transmits >= limit) this.#items.delete(item.update.id);
    }
    return chosen.map((item) => item.update);
  }
}
