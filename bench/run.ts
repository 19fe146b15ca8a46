/**
 * Runs the benchmark suite and writes bench/RESULTS.md.
 *
 * ```sh
 * deno task bench            # full run
 * deno task bench --quick    # smoke run for CI, under two minutes
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { measurePropagation, type PropagationResult } from "./propagation.ts";
import {
  measureDetection,
  measureOverlay,
  membershipSection,
} from "./membership.ts";
import { antiEntropySection } from "./anti_entropy.ts";
import { regionsSection } from "./regions.ts";
import {
  type GossipsubResult,
  installPeer,
  measureGossipsub,
} from "./gossipsub.ts";
import { measureThroughput } from "./throughput.ts";
import { measureFootprint } from "./footprint.ts";
import { measureEncoding } from "./encoding.ts";
import { simulateScaling } from "./scaling_sim.ts";
import {
  encodingSection,
  footprintSection,
  gossipsubSection,
  scalingSection,
  targetsSection,
  throughputSection,
} from "./report.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    out: { type: "string" },
    updates: { type: "string" },
  },
});
const quick = Boolean(args.values.quick);
const updates = Number(args.values.updates ?? (quick ? 40 : 200));
const sizes = quick ? [5] : [5, 20, 50];
/** Milliseconds each propagation fleet settles after membership is complete. */
const settleMs = quick ? 1000 : 5000;
const modes = ["tree", "flood", "random"] as const;
const out = args.values.out ??
  new URL(quick ? "./RESULTS.quick.md" : "./RESULTS.md", import.meta.url)
    .pathname;

async function machine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const memory = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  return `${model}, ${cores} cores, ${memory} GiB; ${Deno.build.os} ${Deno.osRelease()}; Deno ${Deno.version.deno}`;
}

/** Reads the 1, 5 and 15 minute load averages from /proc/loadavg. */
async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "");
  return text.split(" ").slice(0, 3).join(" ") || "unknown";
}

const fmt = (ms: number) => ms.toFixed(2);

function propagationTable(results: PropagationResult[]): string {
  const lines = [
    "| N | dissemination | updates | gossip median / p99 / max (ms) | star median / p99 / max (ms) | p99 ratio gossip/star | gossip frames per instance per update | bytes in per instance per update |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    const { gossip, star } = result;
    lines.push(
      `| ${result.size} | ${result.dissemination} | ${result.updates} | ${
        fmt(gossip.medianMs)
      } / ${fmt(gossip.p99Ms)} / ${fmt(gossip.maxMs)} | ` +
        `${fmt(star.medianMs)} / ${fmt(star.p99Ms)} / ${fmt(star.maxMs)} | ${
          (gossip.p99Ms / star.p99Ms).toFixed(2)
        } | ` +
        `${result.gossipFramesPerInstance.toFixed(2)} (star: 1) | ${
          Math.round(result.gossipBytesPerInstance)
        } |`,
    );
  }
  return lines.join("\n");
}

const started = Date.now();
const loadAtStart = await loadAverage();
const results: PropagationResult[] = [];
/** Runs that failed, with the reason, so that one failure does not end the suite. */
const failures: string[] = [];
for (const size of sizes) {
  for (const mode of modes) {
    console.log(`propagation: N=${size}, ${mode}, ${updates} updates`);
    try {
      results.push(
        await measurePropagation(size, updates, mode, console.log, settleMs),
      );
    } catch (error) {
      const message = `propagation N=${size} ${mode}: ${
        (error as Error).message
      }`;
      console.error(`failed: ${message}`);
      failures.push(message);
    }
  }
}
const antiEntropy = await antiEntropySection(quick, console.log);
const regions = await regionsSection(quick, console.log);

// ---- Real peer: libp2p gossipsub ----------------------------------------
let gossipsub: GossipsubResult[] | string;
try {
  console.log("gossipsub: installing the peer's npm packages");
  const dir = await installPeer();
  try {
    gossipsub = [];
    for (const size of sizes) {
      console.log(`gossipsub: N=${size}, ${updates} updates`);
      try {
        gossipsub.push(
          await measureGossipsub(dir, size, updates, console.log),
        );
      } catch (error) {
        const message = `gossipsub N=${size}: ${(error as Error).message}`;
        console.error(`failed: ${message}`);
        failures.push(message);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
} catch (error) {
  gossipsub = (error as Error).message;
  console.error(`gossipsub failed: ${gossipsub}`);
}

// ---- Throughput, footprint, encoding, simulated scaling ------------------
console.log("throughput: write load");
const throughput = await measureThroughput(
  {
    size: 5,
    seconds: quick ? 2 : 10,
    concurrency: 32,
    batchSize: 100,
  },
  console.log,
);
console.log("footprint: memory, start-up and idle CPU");
const footprint = await measureFootprint(
  {
    keyCounts: quick ? [0, 10_000] : [0, 10_000, 100_000],
    idleSeconds: quick ? 3 : 10,
    idleSize: 5,
  },
  console.log,
);
console.log("encoding: JSON, MessagePack and deflate");
const encoding = measureEncoding(quick ? 50 : 300);
console.log("scaling: simulator");
const simulated = (quick ? [50, 1000] : [50, 1000, 10_000]).map((nodes) =>
  simulateScaling(nodes)
);

console.log("membership: failure detection and overlay shape");
const membership = membershipSection(
  await measureDetection(),
  await measureOverlay(),
);

// The analysis is written by hand from a full run and kept beside it.
const analysis = quick ? "" : await Deno.readTextFile(
  new URL("./analysis.md", import.meta.url),
).catch(() => "");

const report = `# Benchmark results

Written by \`deno task bench${quick ? " --quick" : ""}\` on ${
  new Date().toISOString()
}.

Machine: ${await machine()}. Load average (1, 5, 15 min) at the start:
${loadAtStart}; at the end: ${await loadAverage()}. Everything else running on
the machine shares its two cores with the benchmark.
Settings: the \`local\` preset with its defaults (fanout 3, share limit
4 × ceil(log10(N + 1)), feedback limit 3), one process per instance on
127.0.0.1, values of about 170 bytes of JSON.

## Propagation

Time from an acknowledged write until every instance has applied it, seen
on each instance's change feed. The gossip writer is a different instance
each update. "star" is the baseline in the same run: the benchmark holds a
link to every instance and sends the update to each directly, one frame
each, which is the one-hop floor. The star updates run on the same fleet
right after the gossip updates (an instance spreads an update pushed to it
as an anti-entropy repair, and interleaved star updates would prune the tree
the gossip updates use), and each dissemination mode runs on a fleet of its
own, measured once every instance lists all N as alive, ${
  settleMs / 1000
} s later, after 5
warm-up updates that build the tree and are not counted: \`tree\` (the default:
eager push on a pruned spanning tree, lazy announcements on the other
links), \`flood\` (every instance forwards to all its links on first
receipt) and \`random\` (Demers-style rumor mongering to \`fanout\` random
links per round). "Gossip frames" counts \`rumor\`, \`feedback\`, \`ihave\`
and \`graft\` frames received by all instances for one update, divided by N;
"bytes in" counts all frames in the same window, keepalives, probes and
anti-entropy included.

${propagationTable(results)}
${
  failures.length > 0
    ? `\nRuns that failed:\n\n${
      failures.map((line) => `- ${line}`).join("\n")
    }\n`
    : ""
}
${gossipsubSection(gossipsub, results)}
${throughputSection(throughput)}
${footprintSection(footprint)}
${encodingSection(encoding)}
${scalingSection(results, simulated)}
${antiEntropy}
${regions}${membership}
${targetsSection({ results, gossipsub, throughput, footprint })}
${analysis}

Total run time: ${Math.round((Date.now() - started) / 1000)} s.
`;
await Deno.writeTextFile(out, report);
// Format the report as `deno task check` expects of every Markdown file.
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "--quiet", out],
  stdout: "null",
  stderr: "inherit",
}).output();
console.log(report);
console.log(`wrote ${out}`);
