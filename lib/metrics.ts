/**
 * The Prometheus metrics of `GET /metrics`, built with prom-client: every
 * counter of {@link Counters} as `grapevine_NAME_total`, gauges read at
 * scrape time, and a histogram of KV commit latency.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Counters } from "./protocol/counters.ts";
import type { GossipNode } from "./protocol/node.ts";

/**
 * The counters the core and the adapters keep, by counter name, with their
 * label names. They are exported from the start, so that a scrape shows
 * every family even before its first count. Counters not listed here are
 * exported once counted.
 */
export const KNOWN_COUNTERS: Readonly<
  Record<string, { help: string; labels: string[] }>
> = {
  frames_in: { help: "WebSocket frames received, by type", labels: ["type"] },
  frames_out: { help: "WebSocket frames sent, by type", labels: ["type"] },
  bytes_in: { help: "Bytes of WebSocket frames received", labels: [] },
  bytes_out: { help: "Bytes of WebSocket frames sent", labels: [] },
  rumor_frames_merged: {
    help: "Outgoing rumor frames saved by merging them into fewer frames",
    labels: [],
  },
  invalid_frames: {
    help: "WebSocket frames rejected as invalid, by kind",
    labels: ["kind"],
  },
  links_opened: {
    help: "Links accepted after the hello exchange, by direction",
    labels: ["direction"],
  },
  links_closed_slow: {
    help: "Links closed because the peer read too slowly",
    labels: [],
  },
  updates_applied: {
    help: "Updates applied, by how they arrived",
    labels: ["source"],
  },
  duplicates_received: {
    help:
      "Updates received that this instance already held, by how they arrived",
    labels: ["source"],
  },
  member_updates_rejected: {
    help:
      "Membership updates dropped: a new member past maxMembers, or an incarnation a day ahead of the local clock",
    labels: ["reason"],
  },
  version_conflicts: {
    help:
      "Entries received with the version of the entry held here but another value; instances with the same id cause them",
    labels: [],
  },
  entries_rejected: {
    help: "Remote entries rejected, by reason",
    labels: ["reason"],
  },
  rumors_removed: {
    help: "Rumors that stopped spreading, by reason",
    labels: ["reason"],
  },
  rumor_shares: { help: "Entries pushed to peers as rumors", labels: [] },
  sync_sessions: {
    help:
      "Anti-entropy sessions started by this instance, by transport and result",
    labels: ["result", "via"],
  },
  sync_rounds: {
    help:
      "Request and response pairs of the anti-entropy sessions started here",
    labels: ["via"],
  },
  sync_entries: {
    help:
      "Entries moved by the anti-entropy sessions started here, by direction",
    labels: ["direction"],
  },
  sync_requests_answered: {
    help: "Anti-entropy requests answered for peers",
    labels: [],
  },
  sync_bytes: {
    help:
      "Bytes of anti-entropy requests and responses, by direction and transport",
    labels: ["direction", "via"],
  },
  repairs_rumored: {
    help: "Entries repaired by anti-entropy and then spread as rumors",
    labels: [],
  },
  entries_quarantined: {
    help:
      "Entries set aside because this instance had no anti-entropy round for longer than the tombstone lifetime",
    labels: [],
  },
  quarantine_settled: {
    help:
      "Quarantined entries settled, by outcome: kept, replaced by a newer copy, or dropped",
    labels: ["outcome"],
  },
  tombstones_collected: {
    help: "Delete markers forgotten after the tombstone lifetime",
    labels: [],
  },
  kv_commit_failures: { help: "KV commits that failed", labels: [] },
  auth_failures: {
    help:
      "Fleet key proofs rejected, by endpoint (gossip, sync, link, sync_response) and reason",
    labels: ["endpoint", "reason"],
  },
  links_rejected: {
    help:
      "Links closed for breaking a limit or failing authentication, by close reason",
    labels: ["reason"],
  },
  requests_rejected: {
    help: "HTTP requests rejected by a token check or a rate limit, by reason",
    labels: ["reason"],
  },
  frame_errors: {
    help:
      "Frames whose handling failed inside the instance; the link is closed",
    labels: [],
  },
};

/** Member states always exported, with 0 when no member is in them. */
const MEMBER_STATES = ["alive", "suspect", "dead", "left"];

/** Upper bounds of the KV commit latency buckets, in seconds. */
const COMMIT_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** What the metrics read from an instance. */
export interface MetricsSource {
  readonly counters: Counters;
  readonly node: GossipNode;
  /** Open `/v1/watch` streams. */
  watchers(): number;
}

/**
 * The metrics registry of one instance.
 *
 * @example
 * ```ts ignore
 * const metrics = new Metrics(instance);
 * metrics.observeCommit(1.5, 4);
 * const text = await metrics.text();
 * ```
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #source: MetricsSource;
  readonly #commitSeconds: Histogram;
  readonly #commitOps: Counter;
  /** Counters registered so far, with their label names. */
  readonly #counters = new Map<string, string[]>();

  constructor(source: MetricsSource, startedMs = Date.now()) {
    this.#source = source;
    const registers = [this.registry];
    const { node } = source;

    this.#commitSeconds = new Histogram({
      name: "grapevine_kv_commit_duration_seconds",
      help: "Duration of KV commits",
      buckets: COMMIT_BUCKETS,
      registers,
    });
    this.#commitOps = new Counter({
      name: "grapevine_kv_commit_ops_total",
      help: "KV operations committed",
      registers,
    });
    new Gauge({
      name: "grapevine_info",
      help: "Instance id and region; always 1",
      labelNames: ["instance", "region"],
      registers,
      collect() {
        this.reset();
        this.set({ instance: node.id, region: node.self.region }, 1);
      },
    });
    new Gauge({
      name: "process_start_time_seconds",
      help: "Start time of the process since the Unix epoch, in seconds",
      registers,
      collect() {
        this.set(startedMs / 1000);
      },
    });
    new Gauge({
      name: "grapevine_rumors_active",
      help: "Rumors this instance is still spreading",
      registers,
      collect() {
        this.set(node.activeRumors);
      },
    });
    new Gauge({
      name: "grapevine_links",
      help: "Open links to peers, by direction",
      labelNames: ["direction"],
      registers,
      collect() {
        const links = node.links();
        const outbound = links.filter((link) => link.outbound).length;
        this.set({ direction: "out" }, outbound);
        this.set({ direction: "in" }, links.length - outbound);
      },
    });
    new Gauge({
      name: "grapevine_members",
      help: "Members known to this instance, itself included, by state",
      labelNames: ["state"],
      registers,
      collect() {
        const counts = new Map(MEMBER_STATES.map((state) => [state, 0]));
        for (const member of node.members.values()) {
          counts.set(member.state, (counts.get(member.state) ?? 0) + 1);
        }
        this.reset();
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
    new Gauge({
      name: "grapevine_entries",
      help: "Entries held: live keys and delete markers",
      labelNames: ["kind"],
      registers,
      collect() {
        this.set({ kind: "live" }, node.replica.live);
        this.set({ kind: "tombstone" }, node.replica.tombstones);
      },
    });
    for (const [name, spec] of Object.entries(KNOWN_COUNTERS)) {
      this.#addCounter(name, spec.labels);
    }
    new Gauge({
      name: "grapevine_watchers",
      help: "Open /v1/watch streams",
      registers,
      collect() {
        this.set(source.watchers());
      },
    });
  }

  /** Records one KV commit: its duration in milliseconds and operations. */
  observeCommit(ms: number, ops: number): void {
    this.#commitSeconds.observe(ms / 1000);
    this.#commitOps.inc(ops);
  }

  /** Content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Returns every metric in the Prometheus text format. */
  async text(): Promise<string> {
    this.#registerCounters();
    return await this.registry.metrics();
  }

  /**
   * Registers a prom-client counter for each counter name not seen before;
   * counters appear as the instance first counts them.
   */
  #registerCounters(): void {
    const labelsByName = new Map<string, Set<string>>();
    for (const sample of this.#source.counters.samples()) {
      const labels = labelsByName.get(sample.name) ?? new Set();
      for (const label of Object.keys(sample.labels)) labels.add(label);
      labelsByName.set(sample.name, labels);
    }
    for (const [name, labelSet] of labelsByName) {
      const labelNames = [...labelSet].sort();
      const known = this.#counters.get(name);
      if (known && labelNames.every((label) => known.includes(label))) continue;
      const merged = [...new Set([...(known ?? []), ...labelNames])].sort();
      this.#addCounter(name, merged);
    }
  }

  /** Registers, or registers again with other label names, one counter. */
  #addCounter(name: string, labelNames: string[]): void {
    const metricName = `grapevine_${name.replace(/[^a-zA-Z0-9_]/g, "_")}_total`;
    if (this.#counters.has(name)) this.registry.removeSingleMetric(metricName);
    this.#counters.set(name, labelNames);
    const counters = this.#source.counters;
    new Counter({
      name: metricName,
      help: KNOWN_COUNTERS[name]?.help ??
        `Count of ${name.replaceAll("_", " ")}`,
      labelNames,
      registers: [this.registry],
      collect() {
        // The Counters are the source of truth, so each scrape copies them.
        this.reset();
        for (const sample of counters.samples()) {
          if (sample.name === name) {
            this.inc({ ...sample.labels }, sample.value);
          }
        }
      },
    });
  }
}
