/**
 * The storage seam: what an instance persists and loads at start.
 *
 * @module
 */

import type { Version } from "../protocol/clock.ts";
import type { Entry } from "../protocol/entry.ts";
import type { PersistOp } from "../protocol/node.ts";
import type { RumorRecord } from "../protocol/rumors.ts";

/** Everything an instance reads back at start. */
export interface StoredState {
  /** Id of the instance that owns the store, if one was recorded. */
  readonly nodeId: string | undefined;
  readonly entries: Entry[];
  readonly rumors: RumorRecord[];
  /** Highest version the instance issued. */
  readonly clock: Version | undefined;
  /** Local time of the last anti-entropy session that succeeded. */
  readonly lastSyncMs: number | undefined;
}

/** Limits of one atomic commit. */
export interface CommitLimits {
  /** Most operations in one commit. */
  readonly maxOps: number;
  /** Most bytes of keys and values in one commit. */
  readonly maxBytes: number;
}

/** A durable store of one instance's state. */
export interface Store {
  /** Limits that each {@link commit} call must respect. */
  readonly limits: CommitLimits;
  /** Reads the whole state. */
  load(): Promise<StoredState>;
  /** Commits operations atomically: all of them or none. */
  commit(ops: readonly PersistOp[]): Promise<void>;
  /** Records the owner id. */
  setNodeId(id: string): Promise<void>;
  /** Records the time of the last successful anti-entropy session. */
  setLastSync(ms: number): Promise<void>;
  /** Releases the store. */
  close(): void;
}

/** Approximate bytes an operation adds to a commit. */
export function opBytes(op: PersistOp): number {
  switch (op.type) {
    case "entry":
      return op.entry.key.length * 2 + (op.entry.value?.length ?? 0) +
        (op.entry.sig?.length ?? 0) + 96;
    case "rumor":
      return op.rumor.key.length * 2 + 96;
    case "forget":
    case "rumor_done":
      return op.key.length * 2 + 32;
    case "clock":
      return 96;
  }
}
