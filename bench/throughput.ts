/**
 * Write throughput: acknowledged writes per second that one instance, and
 * a whole fleet, sustain, next to the raw rate of atomic Deno KV commits of
 * the same value size on the same machine (kv_raw.ts, run as a process of
 * its own like an instance).
 *
 * The load generator runs in the benchmark process: `concurrency` loops,
 * each sending one `PUT /v1/config/KEY` at a time over keep-alive
 * connections, or one `POST /v1/config` batch of `batchSize` keys. After
 * each phase the benchmark waits until every instance holds every key, so
 * the figures include spreading the writes, and reads the links closed for
 * sending too many frames per second.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import {
  delay,
  TestFleet,
  type TestInstance,
} from "../tests/helpers/process.ts";

const KV_RAW = fileURLToPath(new URL("./kv_raw.ts", import.meta.url));
/** Bytes of each value's padding; the JSON value is about 170 bytes. */
const PADDING = 150;

/** Figures of one load phase. */
export interface LoadPhase {
  readonly name: string;
  readonly concurrency: number;
  /** Keys per request: 1 for PUT, more for batch POSTs. */
  readonly keysPerRequest: number;
  readonly seconds: number;
  readonly writes: number;
  readonly writesPerSecond: number;
  readonly failedRequests: number;
  /** Median and p99 of the request latency, in milliseconds. */
  readonly medianMs: number;
  readonly p99Ms: number;
  /**
   * Seconds from the end of the load until every instance had every key;
   * NaN when some instance still lacked keys at the time limit.
   */
  readonly drainSeconds: number;
  /** Instances that lacked keys at the time limit, with the number missing. */
  readonly lagging: string;
  /** Acknowledged writes per KV commit on the written instances. */
  readonly writesPerCommit: number;
  /** Rumor frames received per instance per second during the phase. */
  readonly rumorFramesPerSecond: number;
  /** Outgoing rumor frames saved by merging, over the fleet. */
  readonly framesMerged: number;
  /** Links closed because a peer sent more than maxFramesPerSecond. */
  readonly linksRateLimited: number;
}

/** Results of the throughput benchmark. */
export interface ThroughputResult {
  readonly size: number;
  readonly valueBytes: number;
  readonly phases: LoadPhase[];
  readonly rawKv: {
    readonly concurrency: number;
    readonly commitsPerSecond: number;
  };
}

function counter(
  report: { counters: Record<string, number> },
  name: string,
): number {
  let sum = 0;
  for (const [series, value] of Object.entries(report.counters)) {
    if (series === name || series.startsWith(`${name}{`)) sum += value;
  }
  return sum;
}

async function kvCommits(instance: TestInstance): Promise<number> {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  const match = /^grapevine_kv_commit_duration_seconds_count(?:\{\})? (\d+)/m
    .exec(text);
  return Number(match?.[1] ?? 0);
}

async function fleetCounters(fleet: TestFleet) {
  const reports = await Promise.all(
    fleet.instances.map((instance) => instance.status()),
  );
  const sum = (name: string) =>
    reports.reduce((total, report) => total + counter(report, name), 0);
  return {
    rumorFrames: sum("frames_in{type=rumor}"),
    merged: sum("rumor_frames_merged"),
    rateLimited: reports.reduce(
      (total, report) =>
        total + (report.counters["links_rejected{reason=rateLimited}"] ?? 0),
      0,
    ),
  };
}

/**
 * Polls until every instance has `entries` live entries. Returns "" then,
 * or the instances still short at `timeoutMs`, with the keys they lack.
 */
async function waitEntries(
  fleet: TestFleet,
  entries: number,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const reports = await Promise.all(
      fleet.instances.map((instance) => instance.status()),
    );
    const short = reports.filter((report) => report.entries < entries);
    if (short.length === 0) return "";
    if (Date.now() > deadline) {
      return short.map((report) =>
        `${report.id} lacked ${entries - report.entries}`
      ).join(", ");
    }
    await delay(100);
  }
}

async function runLoad(
  targets: TestInstance[],
  concurrency: number,
  keysPerRequest: number,
  seconds: number,
  prefix: string,
): Promise<
  { writes: number; failed: number; latencies: number[]; seconds: number }
> {
  const padding = "x".repeat(PADDING);
  let writes = 0;
  let failed = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const target = targets[worker % targets.length]!;
      for (let n = 0; performance.now() < deadline; n++) {
        const sent = performance.now();
        let response: Response;
        if (keysPerRequest === 1) {
          response = await fetch(
            `${target.url}/v1/config/${prefix}.w${worker}.${n}`,
            {
              method: "PUT",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ n, padding }),
            },
          );
        } else {
          const set: Record<string, unknown> = {};
          for (let k = 0; k < keysPerRequest; k++) {
            set[`${prefix}.w${worker}.${n}.${k}`] = { n, padding };
          }
          response = await fetch(`${target.url}/v1/config`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ set }),
          });
        }
        await response.body?.cancel();
        if (response.ok) {
          writes += keysPerRequest;
          latencies.push(performance.now() - sent);
        } else {
          failed++;
        }
      }
    }),
  );
  return {
    writes,
    failed,
    latencies,
    seconds: (performance.now() - started) / 1000,
  };
}

async function rawKvRate(
  dir: string,
  concurrency: number,
  seconds: number,
): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      KV_RAW,
      "--path",
      `${dir}/raw-${concurrency}.kv`,
      "--concurrency",
      String(concurrency),
      "--seconds",
      String(seconds),
      "--bytes",
      String(PADDING + 20),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(seconds * 1000 + 30_000),
  }).output();
  if (!output.success) {
    throw new Error(
      `kv_raw.ts failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  const result = JSON.parse(new TextDecoder().decode(output.stdout));
  return result.commits / result.seconds;
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)
  ] ??
    NaN;
}

/**
 * Runs the phases on a fleet of `size`: PUTs to one instance, PUTs spread
 * over every instance, and batch POSTs to one instance.
 */
export async function measureThroughput(
  options: {
    size: number;
    seconds: number;
    concurrency: number;
    batchSize: number;
  },
  log: (line: string) => void = () => {},
): Promise<ThroughputResult> {
  const { size, seconds, concurrency, batchSize } = options;
  const fleet = await TestFleet.start(size, {
    flags: [
      "--log-level",
      "info",
      // One benchmark client sends far more than a client's default share.
      "--max-requests-per-second",
      "1000000",
    ],
  });
  const phases: LoadPhase[] = [];
  let entries = 0;
  try {
    await delay(1500);
    const plans = [
      { name: "PUT, one instance", targets: [fleet.instances[0]!], keys: 1 },
      { name: "PUT, every instance", targets: fleet.instances, keys: 1 },
      {
        name: `POST of ${batchSize} keys, one instance`,
        targets: [fleet.instances[0]!],
        keys: batchSize,
      },
    ];
    for (const [index, plan] of plans.entries()) {
      log(`  throughput: ${plan.name}, ${seconds} s`);
      const before = await fleetCounters(fleet);
      const commitsBefore = await Promise.all(plan.targets.map(kvCommits));
      const load = await runLoad(
        plan.targets,
        concurrency,
        plan.keys,
        seconds,
        `load${index}`,
      );
      const loadEnded = performance.now();
      const commitsAfter = await Promise.all(plan.targets.map(kvCommits));
      entries += load.writes;
      const lagging = await waitEntries(fleet, entries, 60_000);
      const drainSeconds = lagging
        ? NaN
        : (performance.now() - loadEnded) / 1000;
      const after = await fleetCounters(fleet);
      const commits = commitsAfter.reduce(
        (sum, value, i) => sum + value - commitsBefore[i]!,
        0,
      );
      phases.push({
        name: plan.name,
        concurrency,
        keysPerRequest: plan.keys,
        seconds: load.seconds,
        writes: load.writes,
        writesPerSecond: load.writes / load.seconds,
        failedRequests: load.failed,
        medianMs: percentile(load.latencies, 0.5),
        p99Ms: percentile(load.latencies, 0.99),
        drainSeconds,
        lagging,
        writesPerCommit: load.writes / Math.max(1, commits),
        rumorFramesPerSecond: (after.rumorFrames - before.rumorFrames) /
          load.seconds / size,
        framesMerged: after.merged - before.merged,
        linksRateLimited: after.rateLimited - before.rateLimited,
      });
    }
    log(`  throughput: raw KV commits, ${seconds} s`);
    const commitsPerSecond = await rawKvRate(fleet.dir, concurrency, seconds);
    return {
      size,
      valueBytes: PADDING + 20,
      phases,
      rawKv: { concurrency, commitsPerSecond },
    };
  } finally {
    await fleet.stop();
  }
}

if (import.meta.main) {
  const result = await measureThroughput(
    { size: 5, seconds: 3, concurrency: 32, batchSize: 100 },
    console.log,
  );
  console.log(JSON.stringify(result, null, 2));
}
