/**
 * The rule for an instance that comes back after more than the tombstone
 * lifetime.
 *
 * Tombstones are collected `tombstoneTtlMs` after the delete, on the
 * assumption that every instance completes an anti-entropy session within
 * that time. An instance that did not (it was stopped or cut off for
 * longer) may still hold entries whose deletes the rest of the fleet has
 * collected. A peer that pulled such an entry would take it as new, and
 * the deleted key would come back.
 *
 * So a stale instance, one whose last anti-entropy session with a vouching
 * peer ended more than `tombstoneTtlMs` ago, quarantines every entry and
 * tombstone older than the horizon (now − `tombstoneTtlMs`). Quarantined
 * entries leave the replica: they are not read, hashed, offered or
 * collected, and they stay in KV. Then:
 *
 * - The first copy of a quarantined key that arrives from a peer settles
 *   it. A newer copy replaces it. An equal or older copy shows that the
 *   fleet still holds the key, so the quarantined entry returns, and it
 *   spreads as a rumor when it is the newer one.
 * - When an anti-entropy session opened after the quarantine began
 *   completes with a vouching peer, every key still quarantined is one that
 *   peer does not hold even though the two walked the whole tree, so the
 *   fleet deleted it and forgot the delete. Those entries are dropped from
 *   KV, and the instance is fresh again.
 *
 * A peer vouches for its state when it has no quarantine, is not stale,
 * and has either completed a session or holds entries, so a new empty
 * instance does not vouch. Sessions with peers that do not vouch settle
 * keys but drop nothing, so instances that were all away do not erase each
 * other's entries.
 *
 * @module
 */

import type { Entry } from "./entry.ts";
import type { Replica } from "./replica.ts";

/**
 * Returns whether an instance whose last vouched anti-entropy session ended
 * at `lastSyncMs` is stale at `nowMs`. An instance that never completed one
 * is not, because it is new or alone in its fleet.
 */
export function isStale(
  lastSyncMs: number | undefined,
  nowMs: number,
  tombstoneTtlMs: number,
): boolean {
  return lastSyncMs !== undefined && nowMs - lastSyncMs > tombstoneTtlMs;
}

/**
 * Quarantined entries of one node.
 *
 * @example
 * ```ts
 * import { Replica } from "./replica.ts";
 * import { Quarantine } from "./quarantine.ts";
 * const replica = new Replica();
 * replica.apply({ key: "old", value: "1", version: [1_000, 0, "a"] });
 * const quarantine = new Quarantine();
 * quarantine.enter(replica, 5_000, 0); // 1 entry moved
 * replica.get("old"); // undefined
 * quarantine.get("old")?.value; // "1"
 * ```
 */
export class Quarantine {
  readonly #entries = new Map<string, Entry>();
  /** Sessions with a serial at or below this cannot end the quarantine. */
  #openedBefore = 0;

  /** Number of entries in quarantine. */
  get size(): number {
    return this.#entries.size;
  }

  /** Returns the quarantined entry of a key. */
  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /**
   * Moves every entry of `replica` whose version is older than `horizonMs`
   * into quarantine. Sessions opened so far, up to serial `lastSerial`,
   * cannot end the quarantine. Returns the number of entries moved.
   */
  enter(replica: Replica, horizonMs: number, lastSerial: number): number {
    const old: Entry[] = [];
    for (const entry of replica.entries()) {
      if (entry.version[0] < horizonMs) old.push(entry);
    }
    if (old.length === 0) return 0;
    if (this.#entries.size === 0) this.#openedBefore = lastSerial;
    for (const entry of old) {
      replica.forget(entry.key);
      this.#entries.set(entry.key, entry);
    }
    return old.length;
  }

  /** Removes a key from quarantine and returns its entry. */
  take(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    this.#entries.delete(key);
    return entry;
  }

  /**
   * Returns whether a session with serial `serial` began after the
   * quarantine, so that completing it with a vouching peer ends it.
   */
  endsWith(serial: number): boolean {
    return this.#entries.size > 0 && serial > this.#openedBefore;
  }

  /** Removes and returns every quarantined entry. */
  drain(): Entry[] {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    return entries;
  }
}
