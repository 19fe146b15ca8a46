/**
 * Observations of membership in a fleet of test instances, shared by the
 * membership tests and the membership benchmark.
 *
 * @module
 */

import type { MembersReport } from "../../lib/http/status.ts";
import { delay, type TestFleet, type TestInstance } from "./process.ts";

/** Reads `GET /v1/members` of an instance. */
export async function members(instance: TestInstance): Promise<MembersReport> {
  const response = await fetch(`${instance.url}/v1/members`);
  return await response.json();
}

/** Returns an instance's view: member id → state. */
export async function view(
  instance: TestInstance,
): Promise<Map<string, string>> {
  const report = await members(instance);
  return new Map(report.members.map((member) => [member.id, member.state]));
}

/** Polls until every instance sees all of `ids` alive; throws on timeout. */
export async function waitAllAlive(
  instances: TestInstance[],
  ids: string[],
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const views = await Promise.all(instances.map(view));
    const missing = views.flatMap((seen, index) =>
      ids.filter((id) => seen.get(id) !== "alive").map((id) =>
        `${instances[index]!.options.id} sees ${id} as ${
          seen.get(id) ?? "unknown"
        }`
      )
    );
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `Not every member is alive everywhere:\n${
          missing.slice(0, 20).join("\n")
        }`,
      );
    }
    await delay(200);
  }
}

/**
 * Watches a fleet in the background and records every time a live instance
 * is seen as dead by another live instance (a false positive).
 */
export class FalsePositiveMonitor {
  readonly falsePositives: string[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(fleet: TestFleet, isLive: (id: string) => boolean) {
    this.#done = (async () => {
      for (let round = 0; round < 10_000 && this.#running; round++) {
        const live = fleet.instances.filter((instance) =>
          isLive(instance.options.id)
        );
        const views = await Promise.all(
          live.map((instance) => view(instance).catch(() => new Map())),
        );
        views.forEach((seen, index) => {
          for (const [id, state] of seen) {
            if (state === "dead" && isLive(id)) {
              this.falsePositives.push(
                `${live[index]!.options.id} saw ${id} dead`,
              );
            }
          }
        });
        await delay(250);
      }
    })();
  }

  async stop(): Promise<string[]> {
    this.#running = false;
    await this.#done;
    return this.falsePositives;
  }
}

/** Result of {@link killAndDetect}. */
export interface DetectionResult {
  /** Milliseconds from the kill until each survivor saw each killed instance dead. */
  readonly detectionMs: number[];
  readonly falsePositives: string[];
  readonly suspicionTimeoutMs: number;
}

/**
 * Kills `victims` with SIGKILL and waits until every other instance sees
 * each of them dead; records detection times and false positives.
 */
export async function killAndDetect(
  fleet: TestFleet,
  victims: TestInstance[],
  timeoutMs = 60_000,
): Promise<DetectionResult> {
  const victimIds = new Set(victims.map((victim) => victim.options.id));
  const survivors = fleet.instances.filter((instance) =>
    !victimIds.has(instance.options.id)
  );
  const suspicionTimeoutMs =
    (await members(survivors[0]!)).suspicion_timeout_ms;
  const monitor = new FalsePositiveMonitor(fleet, (id) => !victimIds.has(id));
  const killedAt = Date.now();
  await Promise.all(victims.map((victim) => victim.kill()));

  const detected = new Map<string, number>();
  const deadline = killedAt + timeoutMs;
  while (
    detected.size < survivors.length * victimIds.size && Date.now() < deadline
  ) {
    const views = await Promise.all(survivors.map(view));
    const now = Date.now();
    views.forEach((seen, index) => {
      for (const id of victimIds) {
        const key = `${survivors[index]!.options.id}->${id}`;
        const state = seen.get(id);
        // A member already forgotten after its retention time counts as seen dead.
        if ((state === "dead" || state === undefined) && !detected.has(key)) {
          detected.set(key, now - killedAt);
        }
      }
    });
    await delay(100);
  }
  const falsePositives = await monitor.stop();
  if (detected.size < survivors.length * victimIds.size) {
    throw new Error(
      `Only ${detected.size} of ${
        survivors.length * victimIds.size
      } detections within ${timeoutMs} ms`,
    );
  }
  return {
    detectionMs: [...detected.values()],
    falsePositives,
    suspicionTimeoutMs,
  };
}

/** Shape of the link graph of a fleet. */
export interface OverlayShape {
  /** Inbound links per instance, by id. */
  readonly inDegree: Map<string, number>;
  /** All links per instance, by id. */
  readonly degree: Map<string, number>;
  /** Whether every instance can reach every other over links. */
  readonly connected: boolean;
  /** Sum of the instances' `shuffles` counters. */
  readonly shuffles: number;
}

/** Reads every instance's links and describes the overlay they form. */
export async function overlayShape(
  instances: TestInstance[],
): Promise<OverlayShape> {
  const reports = await Promise.all(
    instances.map((instance) => instance.status()),
  );
  const inDegree = new Map<string, number>();
  const edges = new Map<string, Set<string>>();
  let shuffles = 0;
  for (const report of reports) {
    inDegree.set(
      report.id,
      report.links.filter((link) => link.direction === "in").length,
    );
    shuffles += report.counters["shuffles"] ?? 0;
    for (const link of report.links) {
      if (!edges.has(report.id)) edges.set(report.id, new Set());
      if (!edges.has(link.peer)) edges.set(link.peer, new Set());
      edges.get(report.id)!.add(link.peer);
      edges.get(link.peer)!.add(report.id);
    }
  }
  const degree = new Map(
    reports.map((report) => [report.id, edges.get(report.id)?.size ?? 0]),
  );
  const start = reports[0]!.id;
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length > 0) {
    for (const next of edges.get(queue.shift()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  const connected = reports.every((report) => seen.has(report.id));
  return { inDegree, degree, connected, shuffles };
}

/**
 * Waits until the fleet has run `count` more shuffles (at most `timeoutMs`),
 * lets the last link replacements settle, and returns the overlay's shape.
 */
export async function shapeAfterShuffles(
  instances: TestInstance[],
  count: number,
  timeoutMs = 60_000,
): Promise<OverlayShape> {
  let shape = await overlayShape(instances);
  const start = shape.shuffles;
  const deadline = Date.now() + timeoutMs;
  while (shape.shuffles - start < count) {
    if (Date.now() > deadline) {
      throw new Error(
        `Only ${
          shape.shuffles - start
        } of ${count} shuffles in ${timeoutMs} ms`,
      );
    }
    await delay(250);
    shape = await overlayShape(instances);
  }
  await delay(500);
  const settled = await overlayShape(instances);
  return { ...settled, shuffles: settled.shuffles - start };
}
