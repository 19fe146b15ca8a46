/**
 * Helpers for tests on a {@link ChaosFleet}: a fleet that prints its logs
 * when the test fails, counter sums and bounded polling.
 *
 * @module
 */

import { ChaosFleet, type ChaosFleetOptions } from "../../lib/chaos/fleet.ts";
import type { StatusReport } from "../../lib/http/status.ts";

/**
 * Runs `body` on a new fleet, prints the instances' logs if it throws, and
 * stops the fleet in every case.
 */
export async function withFleet(
  options: ChaosFleetOptions,
  body: (fleet: ChaosFleet) => Promise<void>,
): Promise<void> {
  const fleet = await ChaosFleet.start(options);
  try {
    await fleet.waitConverged({ timeoutMs: 20_000 });
    await body(fleet);
  } catch (error) {
    console.error(fleet.logs());
    throw error;
  } finally {
    await fleet.close();
  }
}

/** Sums every series of a counter in a status report, or those with `labels`. */
export function counter(
  report: StatusReport,
  name: string,
  labels: Record<string, string> = {},
): number {
  let sum = 0;
  for (const [series, value] of Object.entries(report.counters)) {
    const match = /^([^{]+)(?:\{(.*)\})?$/.exec(series);
    if (match?.[1] !== name) continue;
    const present = new Map(
      (match[2] ?? "").split(",").filter(Boolean).map((pair) =>
        pair.split("=") as [string, string]
      ),
    );
    const wanted = Object.entries(labels).every(([key, value]) =>
      present.get(key) === value
    );
    if (wanted) sum += value;
  }
  return sum;
}

/**
 * Polls `check` every 100 ms until it returns true; throws `message` after
 * `timeoutMs`.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  message: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await delay(100);
  }
  throw new Error(`Timed out after ${timeoutMs} ms: ${message}`);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
