/**
 * Labelled counters kept by the protocol core and its adapters, read by the
 * status endpoint and the metrics exporter.
 *
 * @module
 */

/** Label names and values of one counter series. */
export type Labels = Readonly<Record<string, string>>;

/** One counter series. */
export interface CounterSample {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

/**
 * A set of monotonic counters.
 *
 * @example
 * ```ts
 * import { Counters } from "./counters.ts";
 * const counters = new Counters();
 * counters.inc("frames_in", { type: "rumor" });
 * counters.get("frames_in", { type: "rumor" }); // 1
 * ```
 */
export class Counters {
  readonly #series = new Map<string, CounterSample>();

  /** Adds `by` (default 1) to a series. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    const id = seriesId(name, labels);
    const current = this.#series.get(id);
    this.#series.set(id, {
      name,
      labels: current?.labels ?? labels,
      value: (current?.value ?? 0) + by,
    });
  }

  /** Value of a series, 0 if it was never counted. */
  get(name: string, labels: Labels = {}): number {
    return this.#series.get(seriesId(name, labels))?.value ?? 0;
  }

  /** Sum over every series of a name. */
  total(name: string): number {
    let sum = 0;
    for (const sample of this.#series.values()) {
      if (sample.name === name) sum += sample.value;
    }
    return sum;
  }

  /** All series, sorted by name and labels. */
  samples(): CounterSample[] {
    return [...this.#series.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, sample]) => sample);
  }
}

function seriesId(name: string, labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return name + "{" + keys.map((key) => `${key}=${labels[key]}`).join(",") +
    "}";
}
