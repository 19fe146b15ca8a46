/**
 * The entries one node holds, indexed by key and summarised by a hash tree.
 *
 * @module
 */

import { type Entry, hashEntry, supersedes } from "./entry.ts";
import { HashTree } from "./digest.ts";

interface StoredEntry {
  readonly entry: Entry;
  readonly hash: Uint8Array;
}

/**
 * A last-writer-wins map of entries with an incrementally kept hash tree.
 *
 * @example
 * ```ts
 * import { Replica } from "./replica.ts";
 * const replica = new Replica();
 * replica.apply({ key: "a", value: "1", version: [1, 0, "n"] }); // true
 * replica.apply({ key: "a", value: "0", version: [0, 0, "n"] }); // false: older
 * ```
 */
export class Replica {
  readonly #records = new Map<string, StoredEntry>();
  readonly #tree = new HashTree();
  #tombstones = 0;

  /** The hash tree over all entries, tombstones included. */
  get tree(): HashTree {
    return this.#tree;
  }

  /** Entries held, tombstones included. */
  get size(): number {
    return this.#records.size;
  }

  /** Tombstones held. */
  get tombstones(): number {
    return this.#tombstones;
  }

  /** Entries that are not tombstones. */
  get live(): number {
    return this.#records.size - this.#tombstones;
  }

  /** Hex digest of all entries; equal on two replicas with equal entries. */
  digest(): string {
    return this.#tree.rootHex();
  }

  /** Returns the entry of a key, tombstone or not. */
  get(key: string): Entry | undefined {
    return this.#records.get(key)?.entry;
  }

  /** Iterates over all entries, tombstones included. */
  *entries(): IterableIterator<Entry> {
    for (const record of this.#records.values()) yield record.entry;
  }

  /**
   * Stores `entry` if it is newer than the entry held for its key. Returns
   * whether it was stored.
   */
  apply(entry: Entry): boolean {
    const current = this.#records.get(entry.key);
    if (!supersedes(entry, current?.entry)) return false;
    const hash = hashEntry(entry);
    if (current) {
      this.#tree.replace(entry.key, current.hash, hash);
      if (current.entry.value === null) this.#tombstones--;
    } else {
      this.#tree.add(entry.key, hash);
    }
    if (entry.value === null) this.#tombstones++;
    this.#records.set(entry.key, { entry, hash });
    return true;
  }

  /** Forgets a key entirely; used to collect expired tombstones. */
  forget(key: string): Entry | undefined {
    const current = this.#records.get(key);
    if (!current) return undefined;
    this.#records.delete(key);
    this.#tree.remove(key, current.hash);
    if (current.entry.value === null) this.#tombstones--;
    return current.entry;
  }
}
