/**
 * Types at the boundary of the protocol core: its settings, effects, events
 * and errors.
 *
 * @module
 */

import type { Settings } from "../config.ts";
import type { Version } from "./clock.ts";
import type { Entry } from "./entry.ts";
import type { Counters } from "./counters.ts";
import type { MemberState } from "./membership.ts";
import type {
  CloseReason,
  Frame,
  MemberInfo,
  SyncRequest,
  SyncResponse,
} from "./messages.ts";
import type { RemovalReason, RumorRecord } from "./rumors.ts";
import type { SyncStats } from "./sync.ts";

/** The settings the core reads. */
export type NodeSettings = Pick<
  Settings,
  | "fanout"
  | "retransmitMult"
  | "feedbackLimit"
  | "rumorShareLimit"
  | "rumorFirstPush"
  | "dissemination"
  | "lazyPushIntervalMs"
  | "lazyPushFanout"
  | "maxRumors"
  | "maxMembers"
  | "activeViewSize"
  | "maxLinks"
  | "shuffleIntervalMs"
  | "antiEntropyIntervalMs"
  | "antiEntropyJitter"
  | "antiEntropyMode"
  | "antiEntropyRumorLimit"
  | "syncTimeoutMs"
  | "tombstoneTtlMs"
  | "maxClockDriftMs"
  | "maxKeyBytes"
  | "maxValueBytes"
  | "maxFrameBytes"
  | "maxEntriesPerFrame"
  | "redialMinMs"
  | "redialMaxMs"
  | "seeds"
  | "passiveViewSize"
  | "regionAwareness"
  | "crossRegionLinks"
  | "remoteSyncEvery"
  | "probeIntervalMs"
  | "probeTimeoutMs"
  | "indirectProbes"
  | "suspicionMult"
  | "deadMemberRetentionMs"
  | "maxAwareness"
>;

/** One KV operation; the adapter commits them in the order given. */
export type PersistOp =
  | { type: "entry"; entry: Entry }
  | { type: "forget"; key: string }
  | { type: "rumor"; rumor: RumorRecord }
  | { type: "rumor_done"; key: string }
  | { type: "clock"; version: Version };

/** Path by which an entry reached this node. */
export type ChangeSource = "local" | "rumor" | "push" | "pull";

/** Reason a remote entry was not merged. */
export type RejectReason =
  | "invalid"
  | "future_version"
  | "expired"
  | "unsigned"
  | "bad_signature";

/**
 * Decides whether a remote entry may be merged, for checks the core does
 * not make itself, such as publisher signatures. Returns why the entry is
 * rejected, or `undefined` to merge it. It must be synchronous: the
 * adapter does any asynchronous work before it hands the frame over.
 */
export type EntryAdmission = (
  entry: Entry,
) => { reason: RejectReason; message: string } | undefined;

/** Something that happened in the node, for logs, metrics and watchers. */
export type NodeEvent =
  | {
    type: "change";
    entry: Entry;
    previous: Entry | undefined;
    source: ChangeSource;
    from: string | undefined;
  }
  | {
    type: "rejected";
    key: string;
    reason: RejectReason;
    from: string | undefined;
    message: string;
  }
  | {
    type: "member";
    id: string;
    state: MemberState;
    previous: MemberState | undefined;
    incarnation: number;
  }
  | { type: "link_up"; peer: string; outbound: boolean }
  | { type: "link_down"; peer: string }
  | {
    type: "sync_done";
    peer: string;
    via: "ws" | "http";
    ok: boolean;
    stats: SyncStats;
    error?: string;
  }
  | { type: "rumor_removed"; key: string; reason: RemovalReason }
  | {
    type: "quarantine";
    /** `entered`: entries older than the horizon were set aside (see quarantine.ts); `ended`: those no peer held were dropped. */
    phase: "entered" | "ended";
    entries: number;
  };

/** Effects the node requests from its adapter. */
export interface NodeEffects {
  /** Sends a frame on a link. */
  send(link: number, frame: Frame): void;
  /** Closes a link. */
  closeLink(link: number, reason: CloseReason): void;
  /** Opens a WebSocket link to the instance at a base URL. */
  dial(url: string): void;
  /** Runs one anti-entropy session over HTTP with the instance at a URL. */
  syncOverHttp(url: string): void;
  /**
   * Sends a frame to the instance at a base URL without a link (a probe over
   * HTTP) and passes any response to {@link GossipNode.handleDatagram}.
   */
  datagram(url: string, frame: Frame): void;
  /** Commits KV operations, in order. */
  persist(ops: PersistOp[]): void;
  /** Reports an event. */
  emit(event: NodeEvent): void;
}

/** State loaded from the store at start. */
export interface NodeState {
  readonly entries: Iterable<Entry>;
  readonly rumors: Iterable<RumorRecord>;
  readonly clock: Version | undefined;
  /** Local time of the last anti-entropy session with a vouching peer. */
  readonly lastSyncMs?: number | undefined;
}

/** Options of a {@link GossipNode}. */
export interface NodeOptions {
  readonly settings: NodeSettings;
  /** This node's own member record. */
  readonly self: MemberInfo;
  /** Wall clock in milliseconds. */
  readonly now: () => number;
  /** Uniform random numbers in [0, 1). */
  readonly random: () => number;
  readonly effects: NodeEffects;
  readonly state?: NodeState;
  /** Counters to count into; a new set by default. */
  readonly counters?: Counters;
  /** Extra check of every remote entry before it is merged. */
  readonly admitEntry?: EntryAdmission;
}

/** A client's change to one key: JSON text, or `null` to delete. */
export interface Change {
  readonly key: string;
  readonly value: string | null;
  /**
   * The version a publisher stamped and signed; the node stamps its own
   * version when it is left out.
   */
  readonly version?: Version;
  /** The publisher's signature of key, version and value. */
  readonly sig?: string;
}

/** Problem found in a rejected entry. */
export type EntryProblem = {
  code:
    | "invalid_key"
    | "invalid_value"
    | "value_too_large"
    | "future_version"
    | "stale_version"
    | "unsigned"
    | "bad_signature";
  message: string;
};

/** Raised when a client write is invalid; nothing was stored. */
export class WriteError extends RangeError {
  /** Key that failed the check. */
  readonly key: string;
  /** What failed. */
  readonly code: EntryProblem["code"];

  constructor(key: string, problem: EntryProblem) {
    super(problem.message);
    this.name = "WriteError";
    this.key = key;
    this.code = problem.code;
  }
}

/** One anti-entropy session that the adapter runs over HTTP. */
export interface HttpSyncDriver {
  /** The opening request. */
  first(): SyncRequest;
  /** Merges a response and returns the next request, if any. */
  next(response: SyncResponse): SyncRequest | undefined;
  /** Ends the session, with an error message if it failed. */
  finish(error?: string): void;
}

/** Returns the KV operation that records a new rumor of an entry. */
export function newRumorOp(entry: Entry): PersistOp {
  const { key, version } = entry;
  return { type: "rumor", rumor: { key, version, sends: 0, duplicates: 0 } };
}
