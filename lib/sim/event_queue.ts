/**
 * The future event list of the discrete-event simulator: a binary min-heap
 * ordered by time, and by insertion order among events at the same time,
 * so that runs are deterministic.
 *
 * @module
 */

interface Slot<T> {
  readonly timeMs: number;
  readonly seq: number;
  readonly item: T;
}

/**
 * Events ordered by time.
 *
 * @example
 * ```ts
 * import { EventQueue } from "./event_queue.ts";
 * const queue = new EventQueue<string>();
 * queue.push(20, "late");
 * queue.push(10, "early");
 * queue.pop()?.item; // "early"
 * ```
 */
export class EventQueue<T> {
  readonly #heap: Slot<T>[] = [];
  #seq = 0;

  /** Number of pending events. */
  get size(): number {
    return this.#heap.length;
  }

  /** Time of the next event, or `Infinity` when the queue is empty. */
  peekTime(): number {
    return this.#heap[0]?.timeMs ?? Infinity;
  }

  /** Adds an event at `timeMs`. */
  push(timeMs: number, item: T): void {
    const heap = this.#heap;
    heap.push({ timeMs, seq: this.#seq++, item });
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  /** Removes and returns the earliest event. */
  pop(): { timeMs: number; item: T } | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (!top) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#siftDown();
    }
    return { timeMs: top.timeMs, item: top.item };
  }

  #siftDown(): void {
    const heap = this.#heap;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) {
        smallest = left;
      }
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) {
        smallest = right;
      }
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
      index = smallest;
    }
  }
}

function before<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}
