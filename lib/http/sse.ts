/**
 * Helpers shared by the Server-Sent Events endpoints (`/v1/watch`,
 * `/v1/events`): a per-stream queue that the publisher fills synchronously
 * and the stream's writer loop drains.
 *
 * @module
 */

import type { SSEStreamingApi } from "hono/streaming";

/** Milliseconds between keepalive comments on an idle stream. */
export const KEEPALIVE_MS = 15_000;

/**
 * Items waiting to be written to one stream. A publisher pushes without
 * waiting; the writer loop awaits {@link wait} and drains {@link take}.
 */
export class StreamQueue<T> {
  #items: T[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  /** Items waiting. */
  get length(): number {
    return this.#items.length;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Adds an item and wakes the writer. */
  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** Removes and returns every waiting item. */
  take(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }

  /** Drops every waiting item. */
  clear(): void {
    this.#items = [];
  }

  /** Ends the stream: the writer loop stops at its next wake-up. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  /** Resolves when an item arrives, the queue closes, or `ms` pass. */
  wait(ms: number): Promise<void> {
    if (this.#items.length > 0 || this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    this.#wake = resolve;
    return promise.finally(() => {
      clearTimeout(timer);
      this.#wake = undefined;
    });
  }
}

/**
 * Writes queued items with `write` until the client disconnects or the
 * queue closes, and a keepalive comment after every idle
 * {@link KEEPALIVE_MS}, so that proxies keep the connection open.
 */
export async function drain<T>(
  stream: SSEStreamingApi,
  queue: StreamQueue<T>,
  write: (item: T) => Promise<void>,
): Promise<void> {
  while (!stream.aborted && !stream.closed && !queue.closed) {
    const items = queue.take();
    for (const item of items) {
      if (stream.aborted || stream.closed) return;
      await write(item);
    }
    if (items.length > 0) continue;
    await queue.wait(KEEPALIVE_MS);
    if (queue.length === 0 && !queue.closed && !stream.aborted) {
      await stream.write(": keepalive\n\n");
    }
  }
}
