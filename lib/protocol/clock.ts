/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
 *
 * A version is a triple: wall time in milliseconds, a logical counter that
 * orders events within one millisecond, and the node id as the final
 * tie-break. The clock never goes backwards: a local event takes the larger
 * of the physical time and the highest version seen so far, and bumps the
 * counter when the wall part did not move. Remote versions are merged in on
 * receipt, so causally later writes always carry higher versions even when
 * wall clocks disagree.
 *
 * @module
 */

/** A version: `[wallMs, counter, nodeId]`, ordered in that field order. */
export type Version = readonly [wall: number, counter: number, node: string];

/** Largest logical counter before the clock moves the wall part forward. */
export const MAX_COUNTER = 0xffff;

/**
 * Compares two versions: negative when `a` is older, 0 when equal, positive
 * when `a` is newer.
 *
 * @example
 * ```ts
 * import { compareVersions } from "./clock.ts";
 * compareVersions([1, 0, "a"], [1, 1, "a"]); // negative
 * ```
 */
export function compareVersions(a: Version, b: Version): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  if (a[1] !== b[1]) return a[1] - b[1];
  if (a[2] === b[2]) return 0;
  return a[2] < b[2] ? -1 : 1;
}

/**
 * Formats a version as `wall.counter.node`, the form used in update ids and
 * the HTTP API.
 *
 * @example
 * ```ts
 * import { formatVersion } from "./clock.ts";
 * formatVersion([1733300000000, 2, "eu-1"]); // "1733300000000.2.eu-1"
 * ```
 */
export function formatVersion(version: Version): string {
  return `${version[0]}.${version[1]}.${version[2]}`;
}

/**
 * Parses the output of {@link formatVersion}; returns `undefined` for any
 * other string.
 */
export function parseVersion(text: string): Version | undefined {
  const match = /^(\d{1,15})\.(\d{1,5})\.(.+)$/.exec(text);
  if (!match) return undefined;
  const wall = Number(match[1]);
  const counter = Number(match[2]);
  if (counter > MAX_COUNTER) return undefined;
  return [wall, counter, match[3]!];
}

/** Raised when a remote version is further in the future than allowed. */
export class ClockDriftError extends RangeError {
  /** The rejected version. */
  readonly version: Version;
  /** How far ahead of local physical time it was, in milliseconds. */
  readonly driftMs: number;

  constructor(version: Version, driftMs: number, maxDriftMs: number) {
    super(
      `Version ${
        formatVersion(version)
      } is ${driftMs} ms ahead of local time, more than the maximum drift of ${maxDriftMs} ms`,
    );
    this.name = "ClockDriftError";
    this.version = version;
    this.driftMs = driftMs;
  }
}

/**
 * A hybrid logical clock owned by one node.
 *
 * @example
 * ```ts
 * import { HybridClock } from "./clock.ts";
 * let now = 1000;
 * const clock = new HybridClock("a", () => now);
 * clock.tick(); // [1000, 0, "a"]
 * clock.tick(); // [1000, 1, "a"]
 * now = 2000;
 * clock.tick(); // [2000, 0, "a"]
 * ```
 */
export class HybridClock {
  readonly #node: string;
  readonly #physicalNow: () => number;
  readonly #maxDriftMs: number;
  #wall = 0;
  #counter = 0;

  /**
   * @param node id written into every version this clock issues
   * @param physicalNow source of wall time in milliseconds
   * @param maxDriftMs how far ahead of `physicalNow` a remote version may be
   */
  constructor(
    node: string,
    physicalNow: () => number,
    maxDriftMs = Number.POSITIVE_INFINITY,
  ) {
    this.#node = node;
    this.#physicalNow = physicalNow;
    this.#maxDriftMs = maxDriftMs;
  }

  /** The highest version issued or observed so far. */
  get last(): Version {
    return [this.#wall, this.#counter, this.#node];
  }

  /** Issues a new version, strictly higher than every earlier one. */
  tick(): Version {
    const physical = Math.floor(this.#physicalNow());
    if (physical > this.#wall) {
      this.#wall = physical;
      this.#counter = 0;
    } else {
      this.#advanceCounter();
    }
    return [this.#wall, this.#counter, this.#node];
  }

  /**
   * Merges a version seen from another node, so later local versions order
   * after it.
   *
   * @throws {ClockDriftError} when the version's wall time is more than the
   * maximum drift ahead of local physical time; the clock is left unchanged.
   */
  observe(version: Version): void {
    const physical = Math.floor(this.#physicalNow());
    const drift = version[0] - physical;
    if (drift > this.#maxDriftMs) {
      throw new ClockDriftError(version, drift, this.#maxDriftMs);
    }
    if (version[0] > this.#wall) {
      this.#wall = version[0];
      this.#counter = version[1];
    } else if (version[0] === this.#wall && version[1] > this.#counter) {
      this.#counter = version[1];
    }
  }

  /**
   * Raises the clock to at least `version` without a drift check. Used at
   * start-up with the persisted high-water mark, so a restarted node never
   * issues a version lower than one it issued before.
   */
  restore(version: Version): void {
    if (compareVersions(version, [this.#wall, this.#counter, version[2]]) > 0) {
      this.#wall = version[0];
      this.#counter = version[1];
    }
  }

  #advanceCounter(): void {
    if (this.#counter < MAX_COUNTER) {
      this.#counter++;
      return;
    }
    // The counter is full: borrow the next millisecond, as the HLC paper
    // allows, instead of issuing a duplicate.
    this.#wall++;
    this.#counter = 0;
  }
}
