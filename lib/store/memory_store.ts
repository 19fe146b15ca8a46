/**
 * An in-memory {@link Store} for the simulator and unit tests.
 *
 * @module
 */

import type { Version } from "../protocol/clock.ts";
import type { Entry } from "../protocol/entry.ts";
import type { PersistOp } from "../protocol/node.ts";
import type { RumorRecord } from "../protocol/rumors.ts";
import type { CommitLimits, Store, StoredState } from "./store.ts";

/**
 * A store that keeps its state in maps; `commits` counts atomic commits.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 * const store = new MemoryStore();
 * await store.commit([{ type: "entry", entry: { key: "a", value: "1", version: [1, 0, "n"] } }]);
 * (await store.load()).entries.length; // 1
 * ```
 */
export class MemoryStore implements Store {
  readonly limits: CommitLimits = { maxOps: 1000, maxBytes: 700 * 1024 };
  readonly #entries = new Map<string, Entry>();
  readonly #rumors = new Map<string, RumorRecord>();
  #clock: Version | undefined;
  #nodeId: string | undefined;
  #lastSyncMs: number | undefined;
  /** Number of commits so far. */
  commits = 0;

  load(): Promise<StoredState> {
    return Promise.resolve({
      nodeId: this.#nodeId,
      entries: [...this.#entries.values()],
      rumors: [...this.#rumors.values()],
      clock: this.#clock,
      lastSyncMs: this.#lastSyncMs,
    });
  }

  commit(ops: readonly PersistOp[]): Promise<void> {
    if (ops.length > this.limits.maxOps) {
      return Promise.reject(
        new RangeError(
          `Commit of ${ops.length} operations is over the limit of ${this.limits.maxOps}`,
        ),
      );
    }
    for (const op of ops) {
      switch (op.type) {
        case "entry":
          this.#entries.set(op.entry.key, op.entry);
          break;
        case "forget":
          this.#entries.delete(op.key);
          break;
        case "rumor":
          this.#rumors.set(op.rumor.key, op.rumor);
          break;
        case "rumor_done":
          this.#rumors.delete(op.key);
          break;
        case "clock":
          this.#clock = op.version;
          break;
      }
    }
    this.commits++;
    return Promise.resolve();
  }

  setNodeId(id: string): Promise<void> {
    this.#nodeId = id;
    return Promise.resolve();
  }

  setLastSync(ms: number): Promise<void> {
    this.#lastSyncMs = ms;
    return Promise.resolve();
  }

  close(): void {}
}
