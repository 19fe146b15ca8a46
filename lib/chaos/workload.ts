/**
 * Clients that write and delete random keys through random running
 * instances of a {@link ChaosFleet}, recording every attempt in a
 * {@link History}.
 *
 * @module
 */

import { type Random, seededRandom, streamSeed } from "../sim/random.ts";
import type { ChaosFleet } from "./fleet.ts";
import type { History } from "./history.ts";

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  readonly fleet: ChaosFleet;
  readonly history: History;
  /** Seed of the run; each writer draws from its own stream of it. */
  readonly seed: number;
  /** Concurrent clients. */
  readonly writers: number;
  /** Number of distinct keys, `chaos.0` to `chaos.N-1`. */
  readonly keys: number;
  /** Share of operations that are deletes, 0 to 1. */
  readonly deleteShare: number;
  /** Mean pause between two operations of one client, in milliseconds. */
  readonly pauseMs: number;
  /** Stops the clients; each finishes its operation in flight first. */
  readonly signal: AbortSignal;
  /** Operations per client at most; 100,000 by default. */
  readonly maxOpsPerWriter?: number;
}

/** Prefix of the keys the workload writes. */
export const WORKLOAD_PREFIX = "chaos.";

/** Runs the clients until `signal` aborts; never throws. */
export async function runWorkload(options: WorkloadOptions): Promise<void> {
  const writers = [];
  for (let index = 0; index < options.writers; index++) {
    const random = seededRandom(streamSeed(options.seed, 100 + index));
    writers.push(runWriter(options, random));
  }
  await Promise.all(writers);
}

async function runWriter(
  options: WorkloadOptions,
  random: Random,
): Promise<void> {
  const { fleet, history, signal } = options;
  const maxOps = options.maxOpsPerWriter ?? 100_000;
  for (let count = 0; count < maxOps && !signal.aborted; count++) {
    const running = fleet.running();
    const instance = running[Math.floor(random() * running.length)];
    const key = `${WORKLOAD_PREFIX}${Math.floor(random() * options.keys)}`;
    const kind = random() < options.deleteShare ? "delete" : "put";
    const pause = options.pauseMs * (0.5 + random());
    // The instance may have been killed since running() was read.
    const client = instance?.running ? instance.client : undefined;
    if (!instance || !client) {
      await sleep(pause, signal);
      continue;
    }
    const { record, value } = history.begin(key, kind, instance.name);
    try {
      const answer = kind === "put"
        ? await client.put(key, value)
        : await client.delete(key);
      history.acknowledge(record, answer.version);
    } catch (error) {
      history.fail(record, error);
    }
    await sleep(pause, signal);
  }
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}
