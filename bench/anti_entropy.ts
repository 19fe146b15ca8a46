/**
 * Anti-entropy benchmark.
 *
 * Part one measures the bytes and time of one anti-entropy session between
 * two instances that hold 10,000 keys and differ in 0, 1, 100, 1,000 or
 * all 10,000 of them, and between a full instance and an empty one. The
 * two instances are real {@link Instance}s (the class `main.ts serve`
 * runs: HTTP server, Hono routes, zod validation, protocol core) in this
 * process, and the session is the real HTTP one (`runHttpSync`, `POST
 * /v1/sync`). Running them in one process lets the benchmark load each
 * with exactly the entries it needs, with no rumors in flight and no
 * rounds of their own. A session is a strict sequence of request and
 * response, so a second process would change neither the bytes nor the
 * order of the work. Bytes are the JSON bodies in both directions; HTTP
 * headers are left out.
 *
 * Part two measures the time from healing a 3 | 3 split of six real
 * `main.ts serve` processes behind the fault proxy until every instance
 * reports the same digest, as a multiple of the anti-entropy interval.
 *
 * @module
 */

import { ChaosFleet } from "../lib/chaos/fleet.ts";
import { resolveSettings } from "../lib/config.ts";
import { Instance } from "../lib/instance.ts";
import { Logger } from "../lib/log.ts";
import { runHttpSync } from "../lib/net/http_sync.ts";
import { Counters } from "../lib/protocol/counters.ts";
import type { Entry } from "../lib/protocol/entry.ts";
import type { HttpSyncDriver } from "../lib/protocol/node.ts";
import { MemoryStore } from "../lib/store/memory_store.ts";
import { quantile } from "./propagation.ts";

/** One measured anti-entropy session. */
export interface SessionResult {
  /** Row label that names the difference. */
  readonly label: string;
  readonly keys: number;
  readonly differing: number;
  /** Bytes of request and response bodies, both directions together. */
  readonly bytes: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** Request and response pairs. */
  readonly rounds: number;
  readonly pulled: number;
  readonly pushed: number;
  /** Median wall time of the session over the repetitions, in ms. */
  readonly medianMs: number;
}

/** Time to converge after heals of a split fleet. */
export interface HealResult {
  readonly intervalMs: number;
  readonly trials: number;
  /** Milliseconds from heal to equal digests, sorted. */
  readonly samplesMs: number[];
}

const DAY_MS = 24 * 3600 * 1000;
const BASE_WALL_MS = Date.now() - 3_600_000;

/** Builds `count` entries of about 100 bytes of JSON each. */
function entries(count: number, node: string, offset = 0): Entry[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `config.service-${i}.settings`,
    value: JSON.stringify({
      enabled: i % 2 === 0,
      limit: i,
      owner: `team-${i % 17}`,
      note: "benchmark value",
    }),
    version: [BASE_WALL_MS + offset + i, 0, node] as const,
  }));
}

async function storeWith(list: readonly Entry[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (let i = 0; i < list.length; i += 500) {
    await store.commit(
      list.slice(i, i + 500).map((entry) => ({ type: "entry", entry })),
    );
  }
  return store;
}

async function startInstance(id: string, list: readonly Entry[]) {
  const settings = resolveSettings({
    id,
    port: 0,
    preset: "local",
    // No rounds of its own: the benchmark runs the one session measured.
    antiEntropyIntervalMs: DAY_MS,
    logLevel: "error",
  });
  const log = new Logger({
    level: "error",
    format: "json",
    base: { instance: id },
    write: () => {},
  });
  return await Instance.start(settings, { store: await storeWith(list), log });
}

/**
 * Runs one session from an instance holding `initiator` to one holding
 * `responder`, `repeat` times on fresh instances.
 */
async function measureSession(
  label: string,
  initiator: readonly Entry[],
  responder: readonly Entry[],
  differing: number,
  repeat: number,
): Promise<SessionResult> {
  const times: number[] = [];
  let last:
    | Omit<SessionResult, "label" | "medianMs" | "keys" | "differing">
    | undefined;
  for (let run = 0; run < repeat; run++) {
    await using a = await startInstance("bench-a", initiator);
    await using b = await startInstance("bench-b", responder);
    const counters = new Counters();
    const inner = a.node.openHttpSync(b.url!)!;
    let rounds = 0;
    let pulled = 0;
    let pushed = 0;
    const driver: HttpSyncDriver = {
      first: () => {
        const request = inner.first();
        pushed += request.push.length;
        return request;
      },
      next: (response) => {
        rounds++;
        pulled += response.entries.length;
        const request = inner.next(response);
        pushed += request?.push.length ?? 0;
        return request;
      },
      finish: (error) => {
        inner.finish(error);
        if (error) throw new Error(`Benchmark session failed: ${error}`);
      },
    };
    const started = performance.now();
    await runHttpSync({
      url: b.url!,
      from: a.node.id,
      driver,
      timeoutMs: 120_000,
      signal: new AbortController().signal,
      counters,
    });
    times.push(performance.now() - started);
    if (a.node.replica.digest() !== b.node.replica.digest()) {
      throw new Error(`${label}: the two instances differ after the session`);
    }
    const requestBytes = counters.get("sync_bytes", {
      direction: "out",
      via: "http",
    });
    const responseBytes = counters.get("sync_bytes", {
      direction: "in",
      via: "http",
    });
    last = {
      bytes: requestBytes + responseBytes,
      requestBytes,
      responseBytes,
      rounds,
      pulled,
      pushed,
    };
  }
  times.sort((x, y) => x - y);
  return {
    label,
    keys: Math.max(initiator.length, responder.length),
    differing,
    ...last!,
    medianMs: quantile(times, 0.5),
  };
}

/**
 * Measures one session for each count of differing keys among 10,000 keys
 * (0, 1, 100, 1,000 and all), a full transfer to an empty instance and,
 * when `largeKeys` is set, 1 and 100 differing keys among that many keys.
 */
export async function measureSessions(
  options: {
    repeat?: number;
    largeKeys?: number;
    log?: (line: string) => void;
  } = {},
): Promise<SessionResult[]> {
  const keys = 10_000;
  const repeat = options.repeat ?? 3;
  const log = options.log ?? (() => {});
  const results: SessionResult[] = [];
  const base = entries(keys, "bench-a");
  for (const differing of [0, 1, 100, 1000, keys]) {
    results.push(await measureDifference(base, differing, repeat, log));
  }
  log("anti-entropy: empty instance pulls everything");
  results.push(
    await measureSession(
      `empty instance, ${keys.toLocaleString("en-US")} keys`,
      [],
      base,
      keys,
      repeat,
    ),
  );
  if (options.largeKeys) {
    const large = entries(options.largeKeys, "bench-a");
    for (const differing of [1, 100]) {
      results.push(await measureDifference(large, differing, repeat, log));
    }
  }
  return results;
}

/** Measures a session where the responder holds `differing` newer keys. */
function measureDifference(
  base: readonly Entry[],
  differing: number,
  repeat: number,
  log: (line: string) => void,
): Promise<SessionResult> {
  const keys = base.length;
  // Spread the changed keys over the key space, so that they fall in
  // different leaves.
  const changed = new Set(
    Array.from(
      { length: differing },
      (_, i) => Math.floor(i * keys / Math.max(differing, 1)),
    ),
  );
  const newer = entries(keys, "bench-b", 60_000);
  const responder = base.map((entry, i) => changed.has(i) ? newer[i]! : entry);
  const label = `${differing.toLocaleString("en-US")} of ${
    keys.toLocaleString("en-US")
  } keys differ`;
  log(`anti-entropy: ${label}`);
  return measureSession(label, base, responder, differing, repeat);
}

/**
 * Splits six instances 3 | 3, writes on both sides, heals, and measures the
 * time until every digest is equal, `trials` times.
 */
export async function measureHeal(
  intervalMs: number,
  trials: number,
  log: (line: string) => void = () => {},
): Promise<HealResult> {
  const fleet = await ChaosFleet.start({
    size: 6,
    flags: ["--anti-entropy-interval-ms", String(intervalMs)],
  });
  const samplesMs: number[] = [];
  try {
    await fleet.waitConverged({ timeoutMs: 20_000 });
    const [n1, , , n4] = fleet.instances;
    for (let trial = 0; trial < trials; trial++) {
      await n1!.client.put(`heal.${trial}.deleted`, "x");
      await fleet.waitConverged({ timeoutMs: 20_000 });
      fleet.proxy.partition([["n1", "n2", "n3"], ["n4", "n5", "n6"]]);
      await n1!.client.put(`heal.${trial}.same`, "left");
      await n4!.client.put(`heal.${trial}.same`, "right");
      await n1!.client.delete(`heal.${trial}.deleted`);
      await n4!.client.put(`heal.${trial}.right`, trial);
      await new Promise((resolve) => setTimeout(resolve, 3 * intervalMs));
      fleet.proxy.heal();
      const { ms } = await fleet.waitConverged({ timeoutMs: 60_000 });
      samplesMs.push(ms);
      log(
        `heal: interval ${intervalMs} ms, trial ${trial + 1}: ${
          Math.round(ms)
        } ms`,
      );
    }
  } finally {
    await fleet.close();
  }
  samplesMs.sort((x, y) => x - y);
  return { intervalMs, trials, samplesMs };
}

/** Formats the session results as a Markdown table. */
export function sessionTable(results: readonly SessionResult[]): string {
  const lines = [
    "| case | bytes (requests + responses) | bytes per differing key | rounds | entries pulled / pushed | median time (ms) |",
    "|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    const perKey = result.differing === 0
      ? "–"
      : Math.round(result.bytes / result.differing).toLocaleString("en-US");
    lines.push(
      `| ${result.label} | ${result.bytes.toLocaleString("en-US")} (${
        result.requestBytes.toLocaleString("en-US")
      } + ${
        result.responseBytes.toLocaleString("en-US")
      }) | ${perKey} | ${result.rounds} | ${result.pulled} / ${result.pushed} | ${
        result.medianMs.toFixed(1)
      } |`,
    );
  }
  return lines.join("\n");
}

/** Formats heal results as a Markdown table. */
export function healTable(results: readonly HealResult[]): string {
  const lines = [
    "| anti-entropy interval | trials | median (ms) | max (ms) | median / interval | max / interval |",
    "|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    const median = quantile(result.samplesMs, 0.5);
    const max = result.samplesMs[result.samplesMs.length - 1] ?? NaN;
    lines.push(
      `| ${result.intervalMs} ms | ${result.trials} | ${Math.round(median)} | ${
        Math.round(max)
      } | ${(median / result.intervalMs).toFixed(2)} | ${
        (max / result.intervalMs).toFixed(2)
      } |`,
    );
  }
  return lines.join("\n");
}

/**
 * Runs both parts and returns the "Anti-entropy" section of
 * bench/RESULTS.md. The quick form runs each session once, skips the
 * 100,000-key rows and heals three times at one interval.
 */
export async function antiEntropySection(
  quick: boolean,
  log: (line: string) => void,
): Promise<string> {
  const sessions = await measureSessions({
    repeat: quick ? 1 : 5,
    largeKeys: quick ? undefined : 100_000,
    log,
  });
  const heals: HealResult[] = [];
  for (const intervalMs of quick ? [1000] : [1000, 2000]) {
    heals.push(await measureHeal(intervalMs, quick ? 3 : 10, log));
  }
  return `## Anti-entropy

One anti-entropy session between two instances (written by
\`bench/anti_entropy.ts\`). Both are real instances (HTTP server, routes,
validation and protocol core) in the benchmark's process, and the session
is the real HTTP one, \`POST /v1/sync\`. The responder holds newer
versions of the differing keys, spread over the key space. Bytes are the
JSON bodies of every request and response, without HTTP headers; values
are about 100 bytes of JSON. Time is the median of ${
    quick ? "one run" : "five runs"
  } on fresh instances.

${sessionTable(sessions)}

With no difference a session is one request carrying the root hash and its
answer. Each differing key costs the hashes on its path through the tree (16
child hashes per level, 3 levels), the keys and versions of its leaf, and the
entry itself, so the bytes grow with the number of differing keys. Differing
keys that share tree nodes share that cost, so the cost per key falls as
differences grow, down to about the size of a full transfer when every key
differs. The number of keys enters only through the leaf lists: the tree has
4,096 leaves, so a leaf holds about keys / 4,096 keys, 2.4 at 10,000 keys and
24 at 100,000, which is why a difference costs more in the last two rows.

### Time to converge after a heal

Six \`main.ts serve\` processes behind the fault proxy (\`lib/chaos/\`),
split 3 | 3 for three anti-entropy intervals while each side writes a key
the other side also writes, deletes a key and writes a key of its own.
The time runs from the heal until every instance reports the same digest,
polled every 50 ms. The first round across the former cut repairs both
sides and the repaired entries then spread as rumors, so the fleet
converges within about one interval (intervals carry ±25 % jitter).

${healTable(heals)}
`;
}
