/**
 * Region benchmark: a fleet in three simulated regions, with delays between
 * the regions set on the chaos suite's fault proxy, run once with region
 * awareness on and once with it off. For each update it measures the time
 * until every instance has applied it, and over the run the gossip frames
 * that crossed a region boundary.
 *
 * Arrival times come from each instance's `GET /v1/updates/KEY@VERSION`,
 * which the instance stamps when it applies the update. Cross-region frames
 * are the `frames_cross_region_in{type}` counters of every instance, summed
 * over the `rumor`, `feedback`, `ihave` and `graft` frames that carry or
 * steer rumors.
 *
 * @module
 */

import { ChaosFleet } from "../lib/chaos/fleet.ts";
import {
  applyRegionLatency,
  describeRegionLatency,
  regionDelayMs,
} from "../lib/chaos/region_latency.ts";
import type { StatusReport } from "../lib/http/status.ts";
import type { RegionLatency } from "../lib/manifest.ts";
import { delay } from "../tests/helpers/process.ts";
import { waitForUpdate } from "../tests/helpers/updates.ts";
import { summarize, type Summary } from "./propagation.ts";

/** Region names of the benchmark fleet. */
export const BENCH_REGIONS = ["eu", "us", "ap"] as const;

/** One-way delays between the benchmark's regions. */
export const BENCH_LATENCY: RegionLatency = {
  enabled: true,
  default_ms: 60,
  jitter_ms: 0,
  pairs: [
    { regions: ["eu", "us"], ms: 40 },
    { regions: ["eu", "ap"], ms: 60 },
    { regions: ["us", "ap"], ms: 80 },
  ],
};

/** Frame types that carry or steer rumors. */
const GOSSIP_FRAMES = ["rumor", "feedback", "ihave", "graft"] as const;

/** Time after the last update for feedback and lazy announcements to land. */
const SETTLE_MS = 2000;

/** Results of one run. */
export interface RegionResult {
  readonly awareness: "on" | "off";
  readonly crossRegionLinks: number | undefined;
  readonly size: number;
  readonly updates: number;
  /** Time from the write until the last instance applied it. */
  readonly coverage: Summary;
  /** Gossip frames that crossed a region boundary, per update, by type. */
  readonly crossRegionByType: Record<string, number>;
  /** Sum of {@link crossRegionByType}. */
  readonly crossRegionPerUpdate: number;
  /** Gossip frames received by all instances per update, within regions too. */
  readonly gossipPerUpdate: number;
  /** Median over updates of the largest one-way delay from the writer's region. */
  readonly floorMs: number;
  /** Links between two regions at the end of the run, counted once per link. */
  readonly crossLinks: number;
  /** All links at the end of the run, counted once per link. */
  readonly links: number;
}

/** Returns the largest one-way delay from a region to the others. */
function floorOf(region: string): number {
  return Math.max(
    ...BENCH_REGIONS.map((other) =>
      regionDelayMs(BENCH_LATENCY, region, other)
    ),
  );
}

/** Counts the links of a fleet, and those between two regions, once each. */
function countLinks(
  reports: readonly StatusReport[],
  regionOf: (name: string) => string,
): { links: number; crossLinks: number } {
  const seen = new Set<string>();
  let crossLinks = 0;
  for (const report of reports) {
    for (const link of report.links) {
      const pair = [report.id, link.peer].sort().join(" ");
      if (seen.has(pair)) continue;
      seen.add(pair);
      if (regionOf(report.id) !== regionOf(link.peer)) crossLinks++;
    }
  }
  return { links: seen.size, crossLinks };
}

function counterSum(
  reports: readonly StatusReport[],
  name: string,
  type: string,
): number {
  return reports.reduce(
    (sum, report) => sum + (report.counters[`${name}{type=${type}}`] ?? 0),
    0,
  );
}

/**
 * Runs `updates` writes on a fleet of `perRegion` instances in each of the
 * three regions, with region awareness on or off.
 */
export async function measureRegions(
  options: {
    perRegion: number;
    updates: number;
    awareness: "on" | "off";
    /** The `crossRegionLinks` setting; the default (2) when left out. */
    crossRegionLinks?: number;
  },
  log: (line: string) => void = () => {},
): Promise<RegionResult> {
  const size = options.perRegion * BENCH_REGIONS.length;
  const regionOf = (name: string) =>
    BENCH_REGIONS[(Number(name.slice(1)) - 1) % BENCH_REGIONS.length]!;
  const fleet = await ChaosFleet.start({
    size,
    region: regionOf,
    flags: [
      "--region-awareness",
      options.awareness,
      ...(options.crossRegionLinks === undefined
        ? []
        : ["--cross-region-links", String(options.crossRegionLinks)]),
    ],
  });
  try {
    applyRegionLatency(
      fleet.proxy,
      fleet.names.map((name) => ({ name, region: regionOf(name) })),
      BENCH_LATENCY,
    );
    const watched = fleet.instances.map((instance) => ({
      name: instance.name,
      client: instance.client,
    }));

    // Warm-up: links settle, and the first updates prune the eager links
    // to a tree; neither counts.
    await delay(2000);
    for (let i = 0; i < 5; i++) {
      const writer = fleet.instances[i % size]!;
      const { version } = await writer.client.put(`bench.warmup.${i}`, i);
      await waitForUpdate(watched, `bench.warmup.${i}@${version}`, 30_000);
    }
    await delay(SETTLE_MS);

    const before = await fleet.statuses();
    const coverage: number[] = [];
    const floors: number[] = [];
    for (let i = 0; i < options.updates; i++) {
      const writer = fleet.instances[i % size]!;
      const key = `bench.region.${i}`;
      const { version } = await writer.client.put(key, {
        i,
        padding: "x".repeat(150),
      });
      const arrivals = await waitForUpdate(watched, `${key}@${version}`);
      coverage.push(Math.max(...arrivals.values()));
      floors.push(floorOf(regionOf(writer.name)));
      if ((i + 1) % 25 === 0) {
        log(
          `  regions, awareness ${options.awareness}: ${
            i + 1
          }/${options.updates} updates`,
        );
      }
    }
    await delay(SETTLE_MS);
    const after = await fleet.statuses();

    const crossRegionByType: Record<string, number> = {};
    let crossRegion = 0;
    let gossip = 0;
    for (const type of GOSSIP_FRAMES) {
      const crossed = counterSum(after, "frames_cross_region_in", type) -
        counterSum(before, "frames_cross_region_in", type);
      crossRegionByType[type] = crossed / options.updates;
      crossRegion += crossed;
      gossip += counterSum(after, "frames_in", type) -
        counterSum(before, "frames_in", type);
    }
    return {
      awareness: options.awareness,
      crossRegionLinks: options.crossRegionLinks,
      size,
      updates: options.updates,
      coverage: summarize(coverage),
      crossRegionByType,
      crossRegionPerUpdate: crossRegion / options.updates,
      gossipPerUpdate: gossip / options.updates,
      floorMs: summarize(floors).medianMs,
      ...countLinks(after, regionOf),
    };
  } finally {
    await fleet.close();
  }
}

const fmt = (ms: number) => ms.toFixed(0);

/**
 * Runs the region benchmark with region awareness on and off and returns
 * its report section: 24 instances and 100 updates each, or 18 instances
 * and 15 updates with `quick`. A region of 8 instances has room for a
 * whole active view (6 links at 24 instances). With 5 per region (15
 * instances, 5 links each), the 4 other instances of a region could not
 * hold one.
 */
export async function regionsSection(
  quick: boolean,
  log: (line: string) => void,
): Promise<string> {
  const perRegion = quick ? 6 : 8;
  const updates = quick ? 15 : 100;
  const results: RegionResult[] = [];
  for (const awareness of ["on", "off"] as const) {
    log(
      `regions: N=${
        perRegion * BENCH_REGIONS.length
      }, awareness ${awareness}, ${updates} updates`,
    );
    results.push(await measureRegions({ perRegion, updates, awareness }, log));
  }
  return formatRegions(results);
}

/** Writes the report section of region benchmark results. */
export function formatRegions(results: readonly RegionResult[]): string {
  const lines = [
    "| region awareness | N | updates | coverage median / p99 / max (ms) | cross-region frames per update: rumor / feedback / ihave / graft | cross-region frames per update | per instance | all gossip frames per update | links between regions / all links |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    const byType = GOSSIP_FRAMES.map((type) =>
      result.crossRegionByType[type]!.toFixed(1)
    ).join(" / ");
    lines.push(
      `| ${result.awareness} | ${result.size} | ${result.updates} | ${
        fmt(result.coverage.medianMs)
      } / ${fmt(result.coverage.p99Ms)} / ${
        fmt(result.coverage.maxMs)
      } | ${byType} | ${result.crossRegionPerUpdate.toFixed(1)} | ${
        (result.crossRegionPerUpdate / result.size).toFixed(2)
      } | ${
        result.gossipPerUpdate.toFixed(1)
      } | ${result.crossLinks} / ${result.links} |`,
    );
  }
  const delays = describeRegionLatency(BENCH_LATENCY, BENCH_REGIONS)
    .map((line) => line.replace(" one way", ""))
    .join(", ");
  return `## Regions

${
    results[0]?.size ?? 0
  } \`main.ts serve\` processes in three regions of equal size, with one-way
delays between the regions set on the fault proxy (\`lib/chaos/\`): ${delays}.
Traffic within a region is not delayed. Each configuration runs on a fleet
of its own, with tree dissemination and the \`local\` preset; the writer
changes with each update. "Coverage" is the time from the write until the
last instance applied the update, read from each instance's
\`/v1/updates\` report. Cross-region frames are the \`rumor\`, \`feedback\`,
\`ihave\` and \`graft\` frames that instances received from another region,
summed over the fleet and divided by the number of updates. Links are
counted at the end of each run.

${lines.join("\n")}

${results.map(describeResult).join("\n")}
Region awareness makes an instance dial \`crossRegionLinks\` (2) of its links
in other regions and the rest in its own. Links that others dial count toward
that share too: an instance past it closes a cross-region link it dialled.
The \`ihave\` frames are the lazy announcements of tree dissemination: every
lazy push interval (250 ms in the \`local\` preset) in which it applied
updates, an instance announces them on \`lazyPushFanout\` (1) random pruned
link. With region awareness on, that link is in its own region when it has
one there. Each announcement lists every update since the last announcement
on that link.
`;
}

/** Writes one paragraph of figures about one run. */
function describeResult(result: RegionResult): string {
  const rumor = result.crossRegionByType.rumor!;
  return `With region awareness ${result.awareness}, ${result.crossLinks} of ${result.links} links joined two regions, and an update crossed a region boundary ${
    rumor.toFixed(1)
  } times as a \`rumor\` frame (${
    (rumor / result.size).toFixed(2)
  } per instance) and ${
    result.crossRegionPerUpdate.toFixed(1)
  } times counting all four frame types. Median coverage was ${
    fmt(result.coverage.medianMs - result.floorMs)
  } ms above ${
    fmt(result.floorMs)
  } ms, the median of the largest one-way delay from the writer's region.
`;
}
