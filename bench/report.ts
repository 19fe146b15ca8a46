/**
 * Markdown sections of bench/RESULTS.md for the gossipsub, throughput,
 * footprint, encoding and scaling benchmarks, and the table of targets.
 *
 * @module
 */

import type { EncodingRow } from "./encoding.ts";
import type { FootprintResult } from "./footprint.ts";
import type { GossipsubResult } from "./gossipsub.ts";
import type { PropagationResult } from "./propagation.ts";
import type { ScalingRow } from "./scaling_sim.ts";
import type { ThroughputResult } from "./throughput.ts";

const ms = (value: number) => value.toFixed(2);
const ratio = (value: number) => value.toFixed(2);
const whole = (value: number) => Math.round(value).toLocaleString("en-US");

function treeAt(
  results: readonly PropagationResult[],
  size: number,
  mode = "tree",
): PropagationResult | undefined {
  return results.find((result) =>
    result.size === size && result.dissemination === mode
  );
}

/** Formats the gossipsub baseline next to Grapevine's tree and the star floor. */
export function gossipsubSection(
  gossipsub: readonly GossipsubResult[] | string,
  results: readonly PropagationResult[],
): string {
  if (typeof gossipsub === "string") {
    return `## Real peer: libp2p gossipsub

Not measured in this run: ${gossipsub}
`;
  }
  const lines = [
    "| N | gossipsub median / p99 / max (ms) | star p99 (ms) | p99 ratio gossipsub/star | Grapevine tree p99 (ms) | p99 ratio tree/gossipsub | RPC frames in per peer per update | message copies per peer per update | bytes in per peer per update | fewest mesh peers at the start |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const result of gossipsub) {
    const tree = treeAt(results, result.size);
    const star = tree?.star.p99Ms ?? NaN;
    const { latency } = result;
    lines.push(
      `| ${result.size} | ${ms(latency.medianMs)} / ${ms(latency.p99Ms)} / ${
        ms(latency.maxMs)
      } | ${ms(star)} | ${ratio(latency.p99Ms / star)} | ${
        ms(tree?.gossip.p99Ms ?? NaN)
      } | ${ratio((tree?.gossip.p99Ms ?? NaN) / latency.p99Ms)} | ${
        result.framesPerPeer.toFixed(2)
      } | ${result.copiesPerPeer.toFixed(2)} | ${
        whole(result.bytesPerPeer)
      } | ${result.minMeshPeers} |`,
    );
  }
  const version = gossipsub[0]?.nodeVersion ?? "unknown";
  return `## Real peer: libp2p gossipsub

The same workload on js-libp2p 3.3 with \`@libp2p/gossipsub\` 17.1.1 and its
default settings (mesh degree 6, heartbeat 1 s, signed messages), one
Node.js ${version} process per peer (\`bench/gossipsub/peer.mjs\`), over
WebSockets on 127.0.0.1 with the plaintext encrypter and yamux, so that,
like the Grapevine fleets here, links carry no TLS. Each peer dials 6
random others, so every mesh can fill. One publisher per update, in turn;
200-byte messages; the next update 30 ms after the last arrival. The time
runs from the moment \`publish()\` resolved to the last peer's first
delivery, both seen by the benchmark on the peers' standard output, as the
Grapevine figures run from the write's HTTP answer to the last change-feed
event. "RPC frames" counts every RPC the peers decoded (messages, IHAVE,
IWANT, IDONTWANT, GRAFT, PRUNE); "copies" counts the messages inside them,
so the figures above 1 are duplicates. The star column is the floor from
the Grapevine tree run at the same N.

${lines.join("\n")}
`;
}

/** Write throughput against raw Deno KV commits. */
export function throughputSection(result: ThroughputResult): string {
  const raw = result.rawKv.commitsPerSecond;
  const lines = [
    "| load | writes/s | ratio to raw KV commits/s | request median / p99 (ms) | writes per KV commit | rumor frames in per instance per s | rumor frames saved by merging | links closed for frame rate | seconds until every instance had every write |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const phase of result.phases) {
    lines.push(
      `| ${phase.name} | ${whole(phase.writesPerSecond)} | ${
        ratio(phase.writesPerSecond / raw)
      } | ${ms(phase.medianMs)} / ${ms(phase.p99Ms)} | ${
        phase.writesPerCommit.toFixed(1)
      } | ${whole(phase.rumorFramesPerSecond)} | ${
        whole(phase.framesMerged)
      } | ${phase.linksRateLimited} | ${
        phase.lagging
          ? `not within 60 s: ${phase.lagging}`
          : phase.drainSeconds.toFixed(2)
      } |`,
    );
  }
  lines.push(
    `| raw \`kv.atomic().set().commit()\`, one key per commit | ${
      whole(raw)
    } | 1.00 | | 1.0 | | | | |`,
  );
  const phase = result.phases[0];
  return `## Throughput

Acknowledged writes per second over ${
    phase ? phase.seconds.toFixed(0) : "?"
  } s per load, ${result.rawKv.concurrency} concurrent requests
with keep-alive from the benchmark process, values of ${result.valueBytes} bytes, a
fleet of ${result.size} instances. The baseline, in the same run, is a separate
Deno process committing one \`kv.atomic().set(…)\` of the same size per
commit with the same concurrency. An instance's commit also stores the
write's pending rumor and the clock, but group commit puts many writes in
one KV commit. Each load ends with every instance holding every write.

${lines.join("\n")}
`;
}

/** Memory, start-up and idle CPU. */
export function footprintSection(result: FootprintResult): string {
  const lines = [
    "| keys | resident memory serving (MiB) | after a restart (MiB) | start-up until /healthz (ms) |",
    "|---|---|---|---|",
  ];
  for (const row of result.rows) {
    lines.push(
      `| ${whole(row.keys)} | ${row.rssMiB.toFixed(1)} | ${
        row.rssAfterRestartMiB.toFixed(1)
      } | ${whole(row.startMs)} |`,
    );
  }
  const { idle } = result;
  return `## Footprint

One instance loaded through batch POSTs of 2,000 keys (values of
${result.valueBytes} bytes), VmRSS from /proc 3 s after the load; then
stopped and started again on the same KV file, timed from spawning
\`deno run main.ts serve\` until \`/healthz\` answered. Baseline in the same
run: \`deno eval\` holding one timer uses ${
    result.denoBaselineMiB.toFixed(1)
  } MiB.

${lines.join("\n")}

Idle: ${idle.size} linked instances without keys over ${idle.seconds} s used
${idle.cpuPercent.toFixed(2)} % of one core each on average (at most ${
    idle.maxCpuPercent.toFixed(2)
  } %), with ${idle.rssMiB.toFixed(1)} MiB resident each.
`;
}

/** JSON against MessagePack, and deflate of large frames. */
export function encodingSection(rows: readonly EncodingRow[]): string {
  const lines = [
    "| frame | JSON bytes | msgpackr bytes (ratio) | @msgpack/msgpack bytes (ratio) | deflate-raw of JSON bytes (ratio) | JSON encode+decode (µs) | msgpackr (µs) | @msgpack/msgpack (µs) | parseFrame today (µs) | deflate+inflate (µs) |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  const us = (value: number) => Number.isNaN(value) ? "" : value.toFixed(1);
  for (const row of rows) {
    const deflate = Number.isNaN(row.deflateBytes)
      ? "below 1 KiB, not compressed"
      : `${whole(row.deflateBytes)} (${
        ratio(row.deflateBytes / row.jsonBytes)
      })`;
    lines.push(
      `| ${row.frame} | ${whole(row.jsonBytes)} | ${
        whole(row.msgpackrBytes)
      } (${ratio(row.msgpackrBytes / row.jsonBytes)}) | ${
        whole(row.msgpackBytes)
      } (${ratio(row.msgpackBytes / row.jsonBytes)}) | ${deflate} | ${
        us(row.jsonUs)
      } | ${us(row.msgpackrUs)} | ${us(row.msgpackUs)} | ${
        us(row.parseFrameUs)
      } | ${us(row.deflateUs)} |`,
    );
  }
  return `## Wire encoding and compression

Real frame shapes with config-like values (\`bench/encoding.ts\`). JSON
encode+decode includes the UTF-8 conversion a WebSocket text frame needs;
"parseFrame today" is what an instance runs on each received frame
(JSON.parse plus the zod schema check). Deflate is node:zlib's raw deflate
at its default level.

${lines.join("\n")}
`;
}

/** Growth from N = 5 to 50 measured, and simulated rows beyond. */
export function scalingSection(
  results: readonly PropagationResult[],
  simulated: readonly ScalingRow[],
): string {
  const lines = [
    "| N | dissemination | p99 (ms) | star p99 (ms) | frames in per instance per update | bytes in per instance per update |",
    "|---|---|---|---|---|---|",
  ];
  for (const result of results) {
    if (result.dissemination === "random") continue;
    lines.push(
      `| ${result.size} | ${result.dissemination} | ${
        ms(result.gossip.p99Ms)
      } | ${ms(result.star.p99Ms)} | ${
        result.gossipFramesPerInstance.toFixed(2)
      } | ${whole(result.gossipBytesPerInstance)} |`,
    );
  }
  const sim = [
    "| N (simulated) | links per node per round | rounds until every node had it | nodes missed by rumors alone | rumor entries received per node | simulation seconds |",
    "|---|---|---|---|---|---|",
  ];
  for (const row of simulated) {
    sim.push(
      `| ${whole(row.nodes)} | ${row.contacts} | ${
        !Number.isNaN(row.roundsToAll)
          ? row.roundsToAll
          : !Number.isNaN(row.rounds99)
          ? `${row.rounds99} to 99 %`
          : `never: ${row.missed} missed`
      } | ${row.missed} (${(row.missed / row.nodes * 100).toFixed(2)} %) | ${
        row.rumorsPerNode.toFixed(2)
      } | ${row.seconds.toFixed(1)} |`,
    );
  }
  return `## Scaling

Measured with real processes (from the propagation runs above):

${lines.join("\n")}

Simulated (\`bench/scaling_sim.ts\`: the real protocol core in the
discrete-event simulator of \`lib/sim\`, one write, anti-entropy off). The
simulator gives each node fresh random links every round instead of
long-lived ones, so it runs \`random\` dissemination, with the default
fanout 3, share limit and feedback limit; it has no stable tree to prune.
These are rounds and frames, not milliseconds, and the missed nodes are
what anti-entropy repairs in a real fleet.

${sim.join("\n")}
`;
}

/** Formats the performance targets, each with its measured figure and whether it is met. */
export function targetsSection(parts: {
  results: readonly PropagationResult[];
  gossipsub: readonly GossipsubResult[] | string;
  throughput: ThroughputResult;
  footprint: FootprintResult;
}): string {
  const sizes = [...new Set(parts.results.map((result) => result.size))];
  const largest = Math.max(...sizes);
  const tree = treeAt(parts.results, largest);
  const flood = treeAt(parts.results, largest, "flood");
  const gossip = typeof parts.gossipsub === "string"
    ? undefined
    : parts.gossipsub.find((result) => result.size === largest);
  const rows: [string, string, boolean | undefined][] = [];
  const check = (name: string, figure: string, met: boolean | undefined) =>
    rows.push([name, figure, met]);
  if (tree) {
    const starRatio = tree.gossip.p99Ms / tree.star.p99Ms;
    check(
      `full-coverage p99 at N = ${largest} within 2× the star floor`,
      `${ms(tree.gossip.p99Ms)} ms against ${ms(tree.star.p99Ms)} ms: ${
        ratio(starRatio)
      }×`,
      starRatio <= 2,
    );
    if (flood) {
      check(
        `p99 at N = ${largest} ahead of flooding`,
        `${ms(tree.gossip.p99Ms)} ms against ${ms(flood.gossip.p99Ms)} ms`,
        tree.gossip.p99Ms < flood.gossip.p99Ms,
      );
    }
    check(
      `p99 at N = ${largest} ahead of gossipsub`,
      gossip
        ? `${ms(tree.gossip.p99Ms)} ms against ${ms(gossip.latency.p99Ms)} ms`
        : "gossipsub not measured",
      gossip ? tree.gossip.p99Ms < gossip.latency.p99Ms : undefined,
    );
  }
  for (const size of sizes) {
    const result = treeAt(parts.results, size);
    if (!result) continue;
    check(
      `at most 2 frames received per instance per update, N = ${size}`,
      result.gossipFramesPerInstance.toFixed(2),
      result.gossipFramesPerInstance <= 2,
    );
  }
  const raw = parts.throughput.rawKv.commitsPerSecond;
  for (const phase of parts.throughput.phases) {
    check(
      `sustained writes at least 50 % of raw KV commits (${phase.name})`,
      `${whole(phase.writesPerSecond)} against ${whole(raw)}: ${
        (phase.writesPerSecond / raw * 100).toFixed(0)
      } %`,
      phase.writesPerSecond >= raw / 2,
    );
  }
  const tenK = parts.footprint.rows.find((row) => row.keys === 10_000);
  if (tenK) {
    check(
      "under 60 MB resident per instance with 10,000 keys",
      `${(tenK.rssMiB * 2 ** 20 / 1e6).toFixed(1)} MB`,
      tenK.rssMiB * 2 ** 20 < 60e6,
    );
  }
  check(
    "anti-entropy bytes grow with the differing keys, not the total",
    "measured by the anti-entropy benchmark",
    undefined,
  );
  const lines = [
    "| target | measured | met |",
    "|---|---|---|",
    ...rows.map(([name, figure, met]) => {
      let verdict = "see there";
      if (met === true) verdict = "yes";
      if (met === false) verdict = "**no**";
      return `| ${name} | ${figure} | ${verdict} |`;
    }),
  ];
  return `## Targets

${lines.join("\n")}
`;
}
