/**
 * Simulated distance between regions: a one-way delay for every pair of
 * instances in different regions, set on a {@link FaultProxy}.
 *
 * `main.ts fleet --regions`, the region benchmark and their tests share
 * these helpers. The delay applies in each direction, so a request and its
 * answer between two regions take twice the delay. Traffic whose source the
 * proxy cannot name, such as a client's, is not delayed.
 *
 * @example
 * ```ts ignore
 * const latency = uniformLatency(80);
 * applyRegionLatency(proxy, [
 *   { name: "eu-1", region: "eu" },
 *   { name: "us-1", region: "us" },
 * ], latency); // 80 ms each way between eu-1 and us-1
 * ```
 *
 * @module
 */

import type { RegionLatency } from "../manifest.ts";
import type { FaultProxy } from "./fault_proxy.ts";

/** An instance as the proxy names it, and its region. */
export interface RegionMember {
  readonly name: string;
  readonly region: string;
}

/** Returns latency settings with the same one-way delay between every two regions. */
export function uniformLatency(ms: number, jitterMs = 0): RegionLatency {
  return {
    enabled: true,
    default_ms: ms,
    jitter_ms: jitterMs,
    pairs: [],
  };
}

/** Returns the one-way delay between two regions; 0 within a region. */
export function regionDelayMs(
  latency: RegionLatency,
  a: string,
  b: string,
): number {
  if (a === b) return 0;
  const pair = latency.pairs.find(({ regions: [x, y] }) =>
    (x === a && y === b) || (x === b && y === a)
  );
  return pair?.ms ?? latency.default_ms;
}

/**
 * Sets the delay (and jitter) on traffic between every two members of
 * different regions, in both directions. Pairs whose delay and jitter are
 * both 0 are left without a fault. Returns the number of directed pairs
 * delayed.
 */
export function applyRegionLatency(
  proxy: FaultProxy,
  members: readonly RegionMember[],
  latency: RegionLatency,
): number {
  let delayed = 0;
  for (const from of members) {
    for (const to of members) {
      if (from.region === to.region) continue;
      const delayMs = regionDelayMs(latency, from.region, to.region);
      if (delayMs === 0 && latency.jitter_ms === 0) continue;
      proxy.set(from.name, to.name, { delayMs, jitterMs: latency.jitter_ms });
      delayed++;
    }
  }
  return delayed;
}

/** Describes the delay between each two regions, one line per pair. */
export function describeRegionLatency(
  latency: RegionLatency,
  regions: readonly string[],
): string[] {
  const lines: string[] = [];
  for (const [i, a] of regions.entries()) {
    for (const b of regions.slice(i + 1)) {
      const jitter = latency.jitter_ms > 0
        ? ` + up to ${latency.jitter_ms} ms jitter`
        : "";
      lines.push(
        `${a} <-> ${b}: ${regionDelayMs(latency, a, b)} ms one way${jitter}`,
      );
    }
  }
  return lines;
}
