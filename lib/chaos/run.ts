/**
 * One chaos run: a fleet behind the fault proxy, clients writing and
 * deleting, random network faults and SIGKILLs for a while, then a heal and
 * the check that every instance converged to a state that keeps every
 * acknowledged operation.
 *
 * Every random choice (fault kinds, targets, durations, kill moments, client
 * operations) comes from streams of one seed, so a failing run can be
 * replayed from its seed. The replay repeats the same schedule; the
 * interleaving of processes still varies from run to run.
 *
 * @module
 */

import { seededRandom, streamSeed } from "../sim/random.ts";
import { ChaosFleet } from "./fleet.ts";
import {
  checkHistory,
  type CheckResult,
  type FinalEntry,
  History,
} from "./history.ts";
import { runWorkload, sleep, WORKLOAD_PREFIX } from "./workload.ts";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  readonly seed: number;
  /** Milliseconds of faults and writes before the final heal. */
  readonly durationMs: number;
  /** Instances in the fleet. */
  readonly size: number;
  /** `antiEntropyIntervalMs` of every instance. */
  readonly antiEntropyIntervalMs: number;
  /** Concurrent clients. */
  readonly writers: number;
  /** Distinct keys the clients write. */
  readonly keys: number;
  /** Mean pause between two network faults, in milliseconds. */
  readonly faultGapMs: number;
  /** Mean pause between two SIGKILLs, in milliseconds; 0 turns them off. */
  readonly killGapMs: number;
  /** Time allowed to converge after the final heal, in milliseconds. */
  readonly convergeTimeoutMs: number;
  /** Receives one line per event. */
  readonly log: (line: string) => void;
}

/** One injected fault. */
export interface FaultEvent {
  /** Milliseconds since the run started. */
  readonly atMs: number;
  readonly kind:
    | "partition"
    | "isolate"
    | "cut"
    | "drop"
    | "delay"
    | "kill"
    | "restart";
  readonly detail: string;
  /** How long it lasted, for network faults and kills. */
  readonly holdMs?: number;
}

/** Outcome of {@link runChaos}. */
export interface ChaosReport {
  readonly seed: number;
  readonly size: number;
  readonly durationMs: number;
  readonly antiEntropyIntervalMs: number;
  readonly faults: FaultEvent[];
  readonly operations: number;
  readonly check: CheckResult;
  /** Whether every instance reported the same digest after the heal. */
  readonly converged: boolean;
  /** Milliseconds from the final heal (every instance up) to convergence. */
  readonly convergeMs: number;
  readonly digest: string;
  /** Error message of a run that failed before its check. */
  readonly error?: string;
}

/** Returns whether a report shows a correct run. */
export function passed(report: ChaosReport): boolean {
  return report.error === undefined && report.converged &&
    report.check.lost.length === 0 && report.check.resurrected.length === 0 &&
    report.check.unexplained.length === 0;
}

/** Default options: six instances for one minute. */
export function defaultChaosOptions(): ChaosOptions {
  return {
    seed: Math.floor(Math.random() * 2 ** 31),
    durationMs: 60_000,
    size: 6,
    antiEntropyIntervalMs: 1000,
    writers: 4,
    keys: 200,
    faultGapMs: 1500,
    killGapMs: 6000,
    convergeTimeoutMs: 60_000,
    log: console.log,
  };
}

/**
 * Runs one chaos run. Throws only when the fleet cannot start; a run that
 * fails later returns a report with `error` set.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const history = new History();
  const faults: FaultEvent[] = [];
  const record = (event: FaultEvent) => {
    faults.push(event);
    const hold = event.holdMs === undefined
      ? ""
      : ` for ${Math.round(event.holdMs)} ms`;
    log(
      `${(event.atMs / 1000).toFixed(1)}s ${event.kind} ${event.detail}${hold}`,
    );
  };

  log(
    `chaos: seed ${options.seed}, ${options.size} instances, ${
      options.durationMs / 1000
    } s`,
  );
  const fleet = await ChaosFleet.start({
    size: options.size,
    flags: [
      "--anti-entropy-interval-ms",
      String(options.antiEntropyIntervalMs),
    ],
  });
  const stopWork = new AbortController();
  // Aborts at the end of the run, cutting short any fault or downtime.
  const deadline = new AbortController();
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  let convergeMs = NaN;
  let converged = false;
  let digest = "";
  let error: string | undefined;
  let check: CheckResult = checkHistory([], new Map());
  try {
    await fleet.waitConverged({ timeoutMs: 20_000 });
    deadlineTimer = setTimeout(() => deadline.abort(), options.durationMs);
    const workload = runWorkload({
      fleet,
      history,
      seed: options.seed,
      writers: options.writers,
      keys: options.keys,
      deleteShare: 0.25,
      pauseMs: 40,
      signal: stopWork.signal,
    });
    const kills = options.killGapMs > 0
      ? killLoop(fleet, options, history, deadline.signal, record)
      : Promise.resolve();
    await faultLoop(fleet, options, history, deadline.signal, record);
    await kills;
    stopWork.abort();
    await workload;

    fleet.proxy.heal();
    for (const instance of fleet.instances) {
      if (!instance.running) {
        await fleet.restart(instance.name);
        record({
          atMs: history.elapsedMs(),
          kind: "restart",
          detail: `${instance.name} for the final heal`,
        });
      }
    }
    log(`${(history.elapsedMs() / 1000).toFixed(1)}s heal: every fault lifted`);
    const result = await fleet.waitConverged({
      timeoutMs: options.convergeTimeoutMs,
    });
    converged = true;
    convergeMs = result.ms;
    digest = result.reports[0]?.digest ?? "";

    const entries = await fleet.running()[0]!.client.list(WORKLOAD_PREFIX);
    const final = new Map<string, FinalEntry>(
      entries.map((entry) => [entry.key, entry]),
    );
    check = checkHistory(history.ops, final);
  } catch (caught) {
    error = (caught as Error).message;
    stopWork.abort();
  } finally {
    clearTimeout(deadlineTimer);
    if (error !== undefined) log(fleet.logs(80));
    await fleet.close();
  }
  return {
    seed: options.seed,
    size: options.size,
    durationMs: options.durationMs,
    antiEntropyIntervalMs: options.antiEntropyIntervalMs,
    faults,
    operations: history.ops.length,
    check,
    converged,
    convergeMs,
    digest,
    error,
  };
}

/** Injects one network fault at a time until `end` aborts, healing each. */
async function faultLoop(
  fleet: ChaosFleet,
  options: ChaosOptions,
  history: History,
  end: AbortSignal,
  record: (event: FaultEvent) => void,
): Promise<void> {
  const random = seededRandom(streamSeed(options.seed, 1));
  const names = fleet.names;
  const pick = () => names[Math.floor(random() * names.length)]!;
  // Each pass waits at least half the fault gap, so passes are bounded.
  while (!end.aborted) {
    await sleep(options.faultGapMs * (0.5 + random()), end);
    if (end.aborted) break;
    const holdMs = 500 + random() * 3500;
    const atMs = history.elapsedMs();
    const draw = random();
    if (draw < 0.3) {
      const shuffled = [...names].sort(() => random() - 0.5);
      const split = 1 + Math.floor(random() * (names.length - 1));
      const sides = [shuffled.slice(0, split), shuffled.slice(split)];
      fleet.proxy.partition(sides);
      record({
        atMs,
        kind: "partition",
        detail: sides.map((side) => side.join(",")).join(" | "),
        holdMs,
      });
    } else if (draw < 0.45) {
      const alone = pick();
      fleet.proxy.partition([[alone], names.filter((name) => name !== alone)]);
      record({ atMs, kind: "isolate", detail: alone, holdMs });
    } else if (draw < 0.6) {
      const a = pick();
      const b = names.find((name) => name !== a && random() < 0.5) ??
        names.find((name) => name !== a)!;
      fleet.proxy.cut(a, b);
      record({ atMs, kind: "cut", detail: `${a} - ${b}`, holdMs });
    } else if (draw < 0.8) {
      const victim = pick();
      fleet.proxy.set("*", victim, { drop: true });
      fleet.proxy.set(victim, "*", { drop: true });
      record({
        atMs,
        kind: "drop",
        detail: `all traffic of ${victim}`,
        holdMs,
      });
    } else {
      const slow = pick();
      const delayMs = Math.round(20 + random() * 280);
      fleet.proxy.set("*", slow, { delayMs, jitterMs: delayMs / 2 });
      fleet.proxy.set(slow, "*", { delayMs, jitterMs: delayMs / 2 });
      record({
        atMs,
        kind: "delay",
        detail: `${slow} by ${delayMs} ms + up to ${delayMs / 2} ms`,
        holdMs,
      });
    }
    await sleep(holdMs, end);
    fleet.proxy.heal();
  }
}

/** Kills a random instance now and then and restarts it a little later. */
async function killLoop(
  fleet: ChaosFleet,
  options: ChaosOptions,
  history: History,
  end: AbortSignal,
  record: (event: FaultEvent) => void,
): Promise<void> {
  const random = seededRandom(streamSeed(options.seed, 2));
  while (!end.aborted) {
    await sleep(options.killGapMs * (0.5 + random()), end);
    if (end.aborted) break;
    const running = fleet.running();
    // Keep most of the fleet up, so that clients have somewhere to write.
    if (running.length < options.size - 1) continue;
    const victim = running[Math.floor(random() * running.length)]!;
    const downMs = 300 + random() * 2700;
    const atMs = history.elapsedMs();
    await fleet.kill(victim.name);
    record({ atMs, kind: "kill", detail: victim.name, holdMs: downMs });
    await sleep(downMs, end);
    await fleet.restart(victim.name);
    record({ atMs: history.elapsedMs(), kind: "restart", detail: victim.name });
  }
}

/** Formats a report for people: seed, faults, operations, losses, timing. */
export function formatReport(report: ChaosReport): string {
  const counts = new Map<string, number>();
  for (const fault of report.faults) {
    counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
  }
  const faultText = [...counts].map(([kind, count]) => `${count} ${kind}`)
    .join(", ") || "none";
  const { check } = report;
  const intervals = report.convergeMs / report.antiEntropyIntervalMs;
  const lines = [
    `seed: ${report.seed} (replay: deno task chaos --seed ${report.seed} --duration ${
      report.durationMs / 1000
    } --instances ${report.size})`,
    `faults injected: ${faultText}`,
    `operations: ${report.operations} sent, ${check.acknowledgedPuts} writes and ${check.acknowledgedDeletes} deletes acknowledged, ${check.unacknowledged} unacknowledged`,
    `keys: ${check.keys}, of which ${check.fromUnacknowledged} end on an unacknowledged operation`,
    `writes lost: ${check.lost.length}`,
    `deleted keys back: ${check.resurrected.length}`,
    `unexplained values: ${check.unexplained.length}`,
    report.converged
      ? `converged ${Math.round(report.convergeMs)} ms after the last heal (${
        intervals.toFixed(2)
      } anti-entropy intervals of ${report.antiEntropyIntervalMs} ms), digest ${report.digest}`
      : "did not converge",
  ];
  for (
    const violation of [
      ...check.lost,
      ...check.resurrected,
      ...check.unexplained,
    ].slice(0, 20)
  ) {
    lines.push(`  ${violation.kind} ${violation.key}: ${violation.detail}`);
  }
  if (report.error) lines.push(`error: ${report.error}`);
  lines.push(passed(report) ? "result: PASS" : "result: FAIL");
  return lines.join("\n");
}
