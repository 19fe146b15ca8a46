/**
 * The change feed behind `GET /v1/watch`: every change an instance applies,
 * numbered in order, with a bounded replay buffer so that a client that
 * reconnects with `Last-Event-ID` receives what it missed.
 *
 * @module
 */

import { formatVersion } from "./protocol/clock.ts";
import type { Entry } from "./protocol/entry.ts";
import type { ChangeSource } from "./protocol/node.ts";

/** One change as watchers see it. */
export interface ChangeEvent {
  /** Position in this instance's feed; the SSE event id. */
  readonly seq: number;
  readonly key: string;
  /** JSON text of the new value, or `null` for a delete. */
  readonly value: string | null;
  /** Version, formatted as `wall.counter.node`. */
  readonly version: string;
  readonly source: ChangeSource;
  /** Id of the peer the change came from; `undefined` for a local write. */
  readonly from: string | undefined;
  /** Local time the change was applied, in milliseconds. */
  readonly appliedMs: number;
}

/** A watcher callback. */
export type ChangeListener = (event: ChangeEvent) => void;

/**
 * A numbered feed of changes with a replay buffer.
 *
 * @example
 * ```ts
 * import { ChangeFeed } from "./change_feed.ts";
 * const feed = new ChangeFeed(100, "node-a");
 * feed.publish({ key: "a", value: "1", version: [1, 0, "n"] }, "local", 5);
 * feed.since(0, "")?.length; // 1
 * ```
 */
export class ChangeFeed {
  readonly #capacity: number;
  readonly #buffer: ChangeEvent[] = [];
  readonly #listeners = new Set<ChangeListener>();
  #seq = 0;
  #closed = false;
  /** Identifies this feed's numbering; it starts again with each process. */
  readonly epoch: string;

  constructor(capacity: number, epoch: string) {
    this.#capacity = capacity;
    this.epoch = epoch;
  }

  /** Sequence number of the last change published. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Number of listeners. */
  get listeners(): number {
    return this.#listeners.size;
  }

  /** Records a change and hands it to every listener. */
  publish(
    entry: Entry,
    source: ChangeSource,
    appliedMs: number,
    from?: string,
  ): ChangeEvent {
    const event: ChangeEvent = {
      seq: ++this.#seq,
      key: entry.key,
      value: entry.value,
      version: formatVersion(entry.version),
      source,
      from,
      appliedMs,
    };
    this.#buffer.push(event);
    if (this.#buffer.length > this.#capacity) this.#buffer.shift();
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing watcher must not stop the others or the gossip loop.
      }
    }
    return event;
  }

  /**
   * Returns changes after `seq` whose key starts with `prefix`, or
   * `undefined` when some of them already left the replay buffer.
   */
  since(seq: number, prefix: string): ChangeEvent[] | undefined {
    const oldest = this.#buffer[0]?.seq ?? this.#seq + 1;
    if (seq < oldest - 1) return undefined;
    return this.#buffer.filter((event) =>
      event.seq > seq && event.key.startsWith(prefix)
    );
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Adds a listener; returns the function that removes it. `onClose` is
   * called when the feed closes, so that open streams can end.
   */
  subscribe(listener: ChangeListener, onClose?: () => void): () => void {
    const entry = Object.assign(listener.bind(undefined), { onClose });
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /** Ends every subscription; used when the instance stops. */
  close(): void {
    this.#closed = true;
    for (const listener of [...this.#listeners]) {
      (listener as ChangeListener & { onClose?: () => void }).onClose?.();
    }
    this.#listeners.clear();
  }
}
