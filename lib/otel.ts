/**
 * Optional OpenTelemetry metrics through Deno's built-in OpenTelemetry
 * support. Deno registers its meter provider with `@opentelemetry/api` only
 * when the process runs with `OTEL_DENO=true`; otherwise the instruments
 * below are no-ops and their callbacks never run.
 *
 * @module
 */

import { metrics } from "@opentelemetry/api";
import { KNOWN_COUNTERS, type MetricsSource } from "./metrics.ts";

/** Returns whether Deno's OpenTelemetry export is switched on for this process. */
export function otelEnabled(): boolean {
  return Deno.env.get("OTEL_DENO") === "true";
}

/**
 * Registers observable instruments that report the instance's counters as
 * `grapevine.NAME` and a few gauges, read at each export.
 */
export function exportOtelMetrics(source: MetricsSource): void {
  const meter = metrics.getMeter("grapevine");
  const { counters, node } = source;
  // NOTE: only the counters listed in KNOWN_COUNTERS are exported here,
  // unlike /metrics, which also exports counters added later.
  for (const [name, spec] of Object.entries(KNOWN_COUNTERS)) {
    meter.createObservableCounter(`grapevine.${name}`, {
      description: spec.help,
    }).addCallback((result) => {
      for (const sample of counters.samples()) {
        if (sample.name === name) result.observe(sample.value, sample.labels);
      }
    });
  }
  meter.createObservableGauge("grapevine.rumors_active", {
    description: "Rumors this instance is still spreading",
  }).addCallback((result) => result.observe(node.activeRumors));
  meter.createObservableGauge("grapevine.links", {
    description: "Open links to peers",
  }).addCallback((result) => result.observe(node.links().length));
  meter.createObservableGauge("grapevine.entries", {
    description: "Entries held: live keys and delete markers",
  }).addCallback((result) => {
    result.observe(node.replica.live, { kind: "live" });
    result.observe(node.replica.tombstones, { kind: "tombstone" });
  });
}
