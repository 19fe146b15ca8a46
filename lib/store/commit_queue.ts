/**
 * Ordered group commit on top of a {@link Store}.
 *
 * Operations are committed in the order they were queued. While one commit
 * runs, later groups wait and are then committed together, so a burst of
 * writes costs a few KV commits instead of one each. A group is never split
 * unless it alone exceeds a commit's limits, and an entry and the rumor of
 * the same key always land in the same commit, so an acknowledged write
 * cannot be persisted without its pending rumor.
 *
 * @module
 */

import type { PersistOp } from "../protocol/node.ts";
import { opBytes, type Store } from "./store.ts";

interface Group {
  readonly ops: readonly PersistOp[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Queues groups of operations and commits them in order.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 * import { CommitQueue } from "./commit_queue.ts";
 * const store = new MemoryStore();
 * const queue = new CommitQueue(store, console.error);
 * await queue.enqueue([{ type: "clock", version: [1, 0, "n"] }]);
 * ```
 */
export class CommitQueue {
  readonly #store: Store;
  readonly #onError: (error: unknown, ops: number) => void;
  readonly #observe: (ms: number, ops: number) => void;
  #pending: Group[] = [];
  #running: Promise<void> | undefined;

  /**
   * @param onError called once per failed commit; the promises of the
   * groups in it reject too
   * @param observe called with the duration and size of each commit
   */
  constructor(
    store: Store,
    onError: (error: unknown, ops: number) => void,
    observe: (ms: number, ops: number) => void = () => {},
  ) {
    this.#store = store;
    this.#onError = onError;
    this.#observe = observe;
  }

  /** Groups waiting for a commit. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Queues a group; the promise settles when its last commit does. */
  enqueue(ops: readonly PersistOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#pending.push({ ops, resolve, reject });
    this.#running ??= this.#drain();
    return promise;
  }

  /** Waits until everything queued so far is committed or failed. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const groups = this.#takeGroups();
        await this.#commitGroups(groups);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** Takes whole groups from the queue while they fit in one commit. */
  #takeGroups(): Group[] {
    const { maxOps, maxBytes } = this.#store.limits;
    const taken: Group[] = [];
    let ops = 0;
    let bytes = 0;
    while (this.#pending.length > 0) {
      const group = this.#pending[0]!;
      const groupBytes = group.ops.reduce((sum, op) => sum + opBytes(op), 0);
      const fits = ops + group.ops.length <= maxOps &&
        bytes + groupBytes <= maxBytes;
      if (taken.length > 0 && !fits) break;
      taken.push(this.#pending.shift()!);
      ops += group.ops.length;
      bytes += groupBytes;
    }
    return taken;
  }

  async #commitGroups(groups: Group[]): Promise<void> {
    const ops = groups.flatMap((group) => group.ops);
    try {
      for (const chunk of this.#chunks(coalesce(ops))) {
        const started = performance.now();
        await this.#store.commit(chunk);
        this.#observe(performance.now() - started, chunk.length);
      }
      for (const group of groups) group.resolve();
    } catch (error) {
      this.#onError(error, ops.length);
      for (const group of groups) group.reject(error);
    }
  }

  /**
   * Splits operations into commits within the store's limits, keeping an
   * entry and its rumor together.
   */
  *#chunks(ops: PersistOp[]): Generator<PersistOp[]> {
    const { maxOps, maxBytes } = this.#store.limits;
    let chunk: PersistOp[] = [];
    let bytes = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const next = ops[i + 1];
      const pair = op.type === "entry" && next?.type === "rumor" &&
        next.rumor.key === op.entry.key;
      const unit = pair ? [op, next] : [op];
      const unitBytes = unit.reduce((sum, item) => sum + opBytes(item), 0);
      if (
        chunk.length > 0 &&
        (chunk.length + unit.length > maxOps || bytes + unitBytes > maxBytes)
      ) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push(...unit);
      bytes += unitBytes;
      if (pair) i++;
    }
    if (chunk.length > 0) yield chunk;
  }
}

/**
 * Keeps only the last operation on each KV key. Operations are in queue
 * order, so the last one is the current state.
 */
function coalesce(ops: readonly PersistOp[]): PersistOp[] {
  const last = new Map<string, PersistOp>();
  for (const op of ops) {
    last.delete(kvKeyOf(op));
    last.set(kvKeyOf(op), op);
  }
  return [...last.values()];
}

function kvKeyOf(op: PersistOp): string {
  switch (op.type) {
    case "entry":
      return `entry\0${op.entry.key}`;
    case "forget":
      return `entry\0${op.key}`;
    case "rumor":
      return `rumor\0${op.rumor.key}`;
    case "rumor_done":
      return `rumor\0${op.key}`;
    case "clock":
      return "clock";
  }
}
