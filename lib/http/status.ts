/**
 * The status report of `GET /v1/status`.
 *
 * @module
 */

import { formatVersion } from "../protocol/clock.ts";
import type { MemberState } from "../protocol/membership.ts";
import type { GossipNode } from "../protocol/node.ts";

/** What `GET /v1/status` returns. */
export interface StatusReport {
  id: string;
  region: string;
  url: string | null;
  /** Newest protocol version this instance speaks. */
  protocol: number;
  /** Live entries: keys with a value. */
  entries: number;
  tombstones: number;
  /** Entries set aside after a long absence until a peer confirms them; see protocol/quarantine.ts. */
  quarantined: number;
  /** Time of the last anti-entropy session with a vouching peer, or null if none completed. */
  last_sync: string | null;
  /** Hash of every entry, tombstones included; equal on two instances exactly when they hold the same entries. */
  digest: string;
  clock: string;
  rumors_active: number;
  uptime_ms: number;
  links: {
    peer: string;
    direction: "in" | "out";
    since: string;
    /** Protocol version the link speaks. */
    protocol: number | null;
  }[];
  members: {
    id: string;
    region: string;
    url: string | null;
    state: MemberState;
    incarnation: number;
    last_contact: string;
  }[];
  counters: Record<string, number>;
}

/** Link versions for the status report, which the node does not track. */
export interface LinkVersions {
  /** Newest protocol version this instance speaks. */
  readonly maxProtocol: number;
  /** Returns the protocol version of the link to a peer. */
  protocolOf(peer: string): number | undefined;
}

/** Builds the status report of a node. */
export function buildStatus(
  node: GossipNode,
  startedMs: number,
  versions: LinkVersions,
): StatusReport {
  const self = node.self;
  const counters: Record<string, number> = {};
  for (const sample of node.counters.samples()) {
    const labels = Object.entries(sample.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
    counters[labels ? `${sample.name}{${labels}}` : sample.name] = sample.value;
  }
  return {
    id: self.id,
    region: self.region,
    url: self.url,
    protocol: versions.maxProtocol,
    entries: node.replica.live,
    tombstones: node.replica.tombstones,
    quarantined: node.quarantined,
    last_sync: node.lastSyncMs === undefined
      ? null
      : new Date(node.lastSyncMs).toISOString(),
    digest: node.replica.digest() || "0".repeat(32),
    clock: formatVersion(node.clock),
    rumors_active: node.activeRumors,
    uptime_ms: Date.now() - startedMs,
    links: node.links().map((link) => ({
      peer: link.peer,
      direction: link.outbound ? "out" : "in",
      since: new Date(link.openedMs).toISOString(),
      protocol: versions.protocolOf(link.peer) ?? null,
    })),
    members: memberViews(node),
    counters,
  };
}

/** One member as the API shows it. */
export type MemberView = StatusReport["members"][number];

/** Returns the member table as the API shows it, sorted by id. */
export function memberViews(node: GossipNode): MemberView[] {
  return [...node.members.values()]
    .map((member) => ({
      id: member.id,
      region: member.region,
      url: member.url,
      state: member.state,
      incarnation: member.incarnation,
      last_contact: new Date(member.lastContactMs).toISOString(),
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** What `GET /v1/members` returns. */
export interface MembersReport {
  id: string;
  members: MemberView[];
  /** Ids in the passive view, from which failed links are replaced. */
  passive: string[];
  /** Links this instance aims to keep. */
  target_links: number;
  /** Milliseconds a suspect has to refute before it is declared dead. */
  suspicion_timeout_ms: number;
  /** Local health score of the failure detector; 0 is healthy. */
  awareness: number;
}

/** Builds the report of `GET /v1/members`. */
export function buildMembers(node: GossipNode): MembersReport {
  return {
    id: node.id,
    members: memberViews(node),
    passive: node.passiveView.sort(),
    target_links: node.targetLinks,
    suspicion_timeout_ms: Math.round(node.suspicionTimeoutMs),
    awareness: node.awareness,
  };
}
