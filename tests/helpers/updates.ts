/**
 * Waits for one update to reach a set of instances and reads, from each
 * instance's `GET /v1/updates/KEY@VERSION`, how long after the write it was
 * applied there. The instances time their own arrivals, so polling does
 * not blur the figures; on one machine they share the writer's clock.
 *
 * @module
 */

import type { GrapevineClient } from "../../lib/client.ts";
import { delay } from "./process.ts";

/** An instance to watch, by name. */
export interface WatchedInstance {
  readonly name: string;
  readonly client: GrapevineClient;
}

/** Milliseconds between two rounds of update reports. */
const POLL_MS = 50;

/**
 * Polls until every instance has applied the update `key@version` (or a
 * newer version of the key) and returns each instance's
 * `applied_after_ms`, by name. The writer itself reports 0.
 *
 * @throws {Error} naming the instances still without the update after
 * `timeoutMs`.
 */
export async function waitForUpdate(
  instances: readonly WatchedInstance[],
  update: string,
  timeoutMs = 15_000,
): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  const arrivals = new Map<string, number>();
  while (true) {
    const waiting = instances.filter(({ name }) => !arrivals.has(name));
    const reports = await Promise.all(
      waiting.map(({ client }) => client.update(update)),
    );
    for (const [index, report] of reports.entries()) {
      if (report.state === "not_received") continue;
      // A superseded update has no arrival time of its own; count it as
      // present at once, which only happens when keys are rewritten.
      arrivals.set(waiting[index]!.name, report.applied_after_ms ?? 0);
    }
    if (arrivals.size === instances.length) return arrivals;
    if (Date.now() > deadline) {
      const missing = instances
        .filter(({ name }) => !arrivals.has(name))
        .map(({ name }) => name);
      throw new Error(
        `Update ${update} did not reach ${
          missing.join(", ")
        } in ${timeoutMs} ms`,
      );
    }
    await delay(POLL_MS);
  }
}
