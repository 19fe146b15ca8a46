/**
 * Membership benchmark: failure detection in a 12-instance fleet after
 * SIGKILL of 3 instances, and the shape of a 20-instance overlay after 200
 * shuffles.
 *
 * @module
 */

import {
  killAndDetect,
  shapeAfterShuffles,
  waitAllAlive,
} from "../tests/helpers/membership.ts";
import { TestFleet } from "../tests/helpers/process.ts";
import { quantile } from "./propagation.ts";

/** Detection figures of one run. */
export interface DetectionFigures {
  readonly size: number;
  readonly killed: number;
  readonly medianMs: number;
  readonly maxMs: number;
  readonly suspicionTimeoutMs: number;
  readonly falsePositives: number;
}

/** Overlay figures of one run. */
export interface OverlayFigures {
  readonly size: number;
  readonly shuffles: number;
  readonly connected: boolean;
  readonly inDegree: { min: number; max: number; mean: number; stddev: number };
  readonly degree: { min: number; max: number; mean: number; stddev: number };
}

function spread(values: number[]) {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) /
    values.length;
  return {
    min: Math.min(...values),
    max: Math.max(...values),
    mean,
    stddev: Math.sqrt(variance),
  };
}

/** Kills 3 of 12 instances and measures detection. */
export async function measureDetection(): Promise<DetectionFigures> {
  const fleet = await TestFleet.start(12, { flags: ["--log-level", "info"] });
  try {
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
    );
    const result = await killAndDetect(fleet, fleet.instances.slice(9));
    const sorted = [...result.detectionMs].sort((a, b) => a - b);
    return {
      size: 12,
      killed: 3,
      medianMs: quantile(sorted, 0.5),
      maxMs: sorted[sorted.length - 1]!,
      suspicionTimeoutMs: result.suspicionTimeoutMs,
      falsePositives: result.falsePositives.length,
    };
  } finally {
    await fleet.stop();
  }
}

/** Runs 200 shuffles in a 20-instance fleet and describes the overlay. */
export async function measureOverlay(): Promise<OverlayFigures> {
  const fleet = await TestFleet.start(20, {
    flags: ["--shuffle-interval-ms", "250", "--log-level", "info"],
  });
  try {
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
      30_000,
    );
    const shape = await shapeAfterShuffles(fleet.instances, 200);
    return {
      size: 20,
      shuffles: shape.shuffles,
      connected: shape.connected,
      inDegree: spread([...shape.inDegree.values()]),
      degree: spread([...shape.degree.values()]),
    };
  } finally {
    await fleet.stop();
  }
}

/** Formats both as a Markdown section. */
export function membershipSection(
  detection: DetectionFigures,
  overlay: OverlayFigures,
): string {
  const fmt = (value: number) => value.toFixed(1);
  return `## Membership

Failure detection (\`local\` preset: probe every 1 s, timeout 500 ms, one
indirect probe, suspicion multiplier 3): ${detection.killed} of ${detection.size}
instances killed with SIGKILL at once; time until each survivor lists each
killed instance as dead, polled every 100 ms.

| instances | killed | detection median / max (ms) | suspicion timeout (ms) | documented bound (ms) | live instances ever seen dead |
|---|---|---|---|---|---|
| ${detection.size} | ${detection.killed} | ${
    Math.round(detection.medianMs)
  } / ${Math.round(detection.maxMs)} | ${
    Math.round(detection.suspicionTimeoutMs)
  } | ${
    Math.round(detection.suspicionTimeoutMs + 5000)
  } | ${detection.falsePositives} |

Overlay after ${overlay.shuffles} shuffles in a ${overlay.size}-instance fleet
(one shuffle per instance every 250 ms): links per instance, counted from
every instance's link list.

| | min | max | mean | standard deviation |
|---|---|---|---|---|
| inbound links | ${overlay.inDegree.min} | ${overlay.inDegree.max} | ${
    fmt(overlay.inDegree.mean)
  } | ${fmt(overlay.inDegree.stddev)} |
| all links | ${overlay.degree.min} | ${overlay.degree.max} | ${
    fmt(overlay.degree.mean)
  } | ${fmt(overlay.degree.stddev)} |

Connected: ${overlay.connected ? "yes" : "NO"}.
`;
}
