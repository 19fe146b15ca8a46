/**
 * The Grapevine protocol core: one node's state machine, free of I/O.
 *
 * The node is driven by calls (a link opened, a frame arrived, a timer
 * fired, a client wrote) and answers through {@link NodeEffects}: frames to
 * send, links to dial or close, KV operations to persist, and events. Time
 * and randomness come from the caller, so the same code runs in a real
 * process, in tests with a fake clock and in a simulator.
 *
 * Updates spread in two ways. Rumor mongering pushes each new update at
 * once to `fanout` linked peers (at the next gossip round instead when
 * `rumorFirstPush` is `next_round`), and again in later gossip rounds, until
 * the rumor is removed (see rumors.ts). Anti-entropy compares hash trees with
 * one random peer every interval and repairs every difference (see
 * sync.ts), so an update that a rumor missed still arrives.
 *
 * @module
 */

import { effectiveShareLimit, type Settings } from "../config.ts";
import { compareVersions, HybridClock, type Version } from "./clock.ts";
import {
  checkKey,
  checkValue,
  type Entry,
  type EntryLimits,
  updateId,
} from "./entry.ts";
import { Counters } from "./counters.ts";
import { DialPlanner } from "./dial_planner.ts";
import { MemberTable } from "./membership.ts";
import type {
  CloseReason,
  Frame,
  FrameOf,
  MemberInfo,
  SyncRequest,
  SyncResponse,
} from "./messages.ts";
import { isStale, Quarantine } from "./quarantine.ts";
import { Replica } from "./replica.ts";
import {
  type RemovalReason,
  RumorBuffer,
  type RumorRecord,
  shuffle,
} from "./rumors.ts";
import {
  answerSync,
  entrySize,
  type SyncLimits,
  SyncSession,
  type SyncStats,
} from "./sync.ts";
import { SyncTargets } from "./sync_targets.ts";

/** The settings the core reads. */
export type NodeSettings = Pick<
  Settings,
  | "fanout"
  | "retransmitMult"
  | "feedbackLimit"
  | "rumorShareLimit"
  | "rumorFirstPush"
  | "maxRumors"
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
>;

/** One KV operation; the adapter commits them in the order given. */
export type PersistOp =
  | { type: "entry"; entry: Entry }
  | { type: "forget"; key: string }
  | { type: "rumor"; rumor: RumorRecord }
  | { type: "rumor_done"; key: string }
  | { type: "clock"; version: Version };

/** How an entry reached this node. */
export type ChangeSource = "local" | "rumor" | "push" | "pull";

/** Why a remote entry was not merged. */
export type RejectReason = "invalid" | "future_version" | "expired";

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

/** What the node asks its adapter to do. */
export interface NodeEffects {
  /** Sends a frame on a link. */
  send(link: number, frame: Frame): void;
  /** Closes a link. */
  closeLink(link: number, reason: CloseReason): void;
  /** Opens a WebSocket link to the instance at a base URL. */
  dial(url: string): void;
  /** Runs one anti-entropy session over HTTP with the instance at a URL. */
  syncOverHttp(url: string): void;
  /** Commits KV operations, in order. */
  persist(ops: PersistOp[]): void;
  /** Reports an event. */
  emit(event: NodeEvent): void;
}

/** Outcome of {@link GossipNode.linkOpened}. */
export type LinkDecision = "accepted" | "duplicate" | "full" | "self";

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
}

/** A client's change to one key: JSON text, or `null` to delete. */
export interface Change {
  readonly key: string;
  readonly value: string | null;
}

/** What is wrong with a rejected entry. */
export type EntryProblem = {
  code: "invalid_key" | "invalid_value" | "value_too_large";
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

interface Link {
  readonly id: number;
  readonly peer: string;
  readonly outbound: boolean;
  readonly openedMs: number;
}

interface OpenSession {
  readonly session: SyncSession;
  readonly peer: string;
  readonly link: number | undefined;
  readonly startedMs: number;
  readonly repair: RepairState;
}

/** What one initiated anti-entropy session learned, beyond its stats. */
interface RepairState {
  /** Order in which the session was opened, from 1. */
  readonly serial: number;
  /** False once a response said the peer does not vouch for its state. */
  vouched: boolean;
  /** Repaired entries spread as rumors so far. */
  rumored: number;
}

/** Members sent in one `members` frame. */
const MEMBERS_PER_FRAME = 64;

/**
 * One Grapevine node.
 *
 * @example
 * ```ts
 * import { GossipNode } from "./node.ts";
 * import { defaultSettings } from "../config.ts";
 * const node = new GossipNode({
 *   settings: defaultSettings(),
 *   self: { id: "a", region: "eu", url: null, incarnation: 0 },
 *   now: () => 1_000,
 *   random: Math.random,
 *   effects: {
 *     send() {}, closeLink() {}, dial() {}, syncOverHttp() {},
 *     persist() {}, emit() {},
 *   },
 * });
 * const { entries } = node.stampWrite([{ key: "k", value: "1" }]);
 * node.applyLocal(entries);
 * node.get("k")?.value; // "1"
 * ```
 */
export class GossipNode {
  /** Counters read by the status and metrics endpoints. */
  readonly counters: Counters;
  readonly #settings: NodeSettings;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #effects: NodeEffects;
  readonly #clock: HybridClock;
  readonly #replica = new Replica();
  readonly #rumors: RumorBuffer;
  readonly #members: MemberTable;
  readonly #planner: DialPlanner;
  readonly #links = new Map<string, Link>();
  readonly #linkPeers = new Map<number, string>();
  readonly #sessions = new Map<number, OpenSession>();
  readonly #selfUrls = new Set<string>();
  readonly #syncTargets: SyncTargets;
  readonly #quarantine = new Quarantine();
  #lastSyncMs: number | undefined;
  #sessionSerial = 0;
  #httpSyncUrl: string | undefined;
  #nextStaleCheckMs: number;
  #ops: PersistOp[] = [];
  #nextRequestId = 1;
  #httpSyncRunning = false;
  #nextSyncMs: number;
  #nextShuffleMs: number;
  #nextCollectMs: number;
  #shufflePending = false;

  constructor(options: NodeOptions) {
    const { settings, self, now, random, effects, state } = options;
    this.#settings = settings;
    this.#now = now;
    this.#random = random;
    this.#effects = effects;
    this.counters = options.counters ?? new Counters();
    this.#clock = new HybridClock(self.id, now, settings.maxClockDriftMs);
    this.#members = new MemberTable(self, now());
    this.#planner = new DialPlanner(settings, random);
    this.#syncTargets = new SyncTargets(settings, random);
    this.#rumors = new RumorBuffer({
      shareLimit: () => effectiveShareLimit(settings, this.#members.size),
      feedbackLimit: settings.feedbackLimit,
      maxRumors: settings.maxRumors,
    });
    if (self.url) this.#selfUrls.add(self.url);
    if (state) this.#restore(state);

    const start = now();
    this.#nextSyncMs = start + this.#syncDelay();
    this.#nextShuffleMs = start + settings.shuffleIntervalMs;
    this.#nextCollectMs = start + this.#collectIntervalMs();
    this.#nextStaleCheckMs = start;
  }

  // ---- Reads ---------------------------------------------------------------

  /** This node's id. */
  get id(): string {
    return this.#members.self.id;
  }

  /** This node's member record. */
  get self(): MemberInfo {
    const { id, region, url, incarnation } = this.#members.self;
    return { id, region, url, incarnation };
  }

  /** The entries this node holds. */
  get replica(): Replica {
    return this.#replica;
  }

  /** The member table. */
  get members(): MemberTable {
    return this.#members;
  }

  /** Number of infective rumors. */
  get activeRumors(): number {
    return this.#rumors.size;
  }

  /** The highest version issued or observed. */
  get clock(): Version {
    return this.#clock.last;
  }

  /**
   * Local time of the last anti-entropy session this node completed with a
   * vouching peer, or `undefined` if there was none.
   */
  get lastSyncMs(): number | undefined {
    return this.#lastSyncMs;
  }

  /** Number of entries in quarantine; see quarantine.ts. */
  get quarantined(): number {
    return this.#quarantine.size;
  }

  /** Returns the infective rumor of a key, while this node still spreads it. */
  rumor(key: string): RumorRecord | undefined {
    const rumor = this.#rumors.get(key);
    return rumor && RumorBuffer.record(rumor);
  }

  /** Returns every infective rumor. */
  rumors(): RumorRecord[] {
    return [...this.#rumors.values()].map(RumorBuffer.record);
  }

  /** Returns the entry of a key, tombstone or not. */
  get(key: string): Entry | undefined {
    return this.#replica.get(key);
  }

  /** Current links, by peer id. */
  links(): { peer: string; outbound: boolean; openedMs: number }[] {
    return [...this.#links.values()].map(({ peer, outbound, openedMs }) => ({
      peer,
      outbound,
      openedMs,
    }));
  }

  // ---- Client writes ---------------------------------------------------------

  /**
   * Validates changes and stamps each with a new version. Returns the
   * entries and the KV operations (entries, rumors and clock) that the
   * caller must commit atomically before calling {@link applyLocal}.
   *
   * @throws {WriteError} on the first invalid key or value; nothing is
   * stamped then.
   */
  stampWrite(changes: readonly Change[]): {
    entries: Entry[];
    ops: PersistOp[];
  } {
    for (const change of changes) {
      const problem = this.#checkEntry(change);
      if (problem) throw new WriteError(change.key, problem);
    }
    const entries: Entry[] = [];
    const ops: PersistOp[] = [];
    for (const change of changes) {
      const entry = { ...change, version: this.#clock.tick() };
      entries.push(entry);
      ops.push({ type: "entry", entry });
      ops.push({
        type: "rumor",
        rumor: {
          key: entry.key,
          version: entry.version,
          sends: 0,
          duplicates: 0,
        },
      });
    }
    if (entries.length > 0) {
      ops.push({ type: "clock", version: this.#clock.last });
    }
    return { entries, ops };
  }

  /**
   * Applies entries from {@link stampWrite} once they are committed, and
   * starts spreading them. An entry that a newer remote version overtook in
   * the meantime is skipped.
   */
  applyLocal(entries: readonly Entry[]): void {
    const fresh = new Set<string>();
    for (const entry of entries) {
      // A local write is newer than any stored entry, quarantined or not.
      this.#quarantine.take(entry.key);
      const previous = this.#replica.get(entry.key);
      if (!this.#replica.apply(entry)) continue;
      fresh.add(entry.key);
      this.#rumors.add(entry.key, entry.version);
      this.counters.inc("updates_applied", { source: "local" });
      this.#effects.emit({
        type: "change",
        entry,
        previous,
        source: "local",
        from: undefined,
      });
    }
    if (this.#settings.rumorFirstPush === "at_once") this.#spread(fresh);
    this.#flush();
  }

  // ---- Links -------------------------------------------------------------------

  /**
   * Registers a link whose peer sent its hello. The adapter closes the link
   * for any decision other than `accepted`.
   */
  linkOpened(
    link: number,
    peer: MemberInfo,
    outbound: boolean,
    dialedUrl?: string,
  ): LinkDecision {
    const now = this.#now();
    if (dialedUrl) this.#planner.succeeded(dialedUrl);
    if (peer.id === this.id) {
      if (dialedUrl) this.#selfUrls.add(dialedUrl);
      return "self";
    }

    const existing = this.#links.get(peer.id);
    if (existing && !this.#prefersNewLink(existing, outbound, peer.id)) {
      return "duplicate";
    }
    if (!existing && !outbound && this.#links.size >= this.#settings.maxLinks) {
      // Before turning the peer away, tell it whom else it can dial.
      this.#effects.send(link, this.#membersFrame());
      return "full";
    }
    if (existing) {
      this.#removeLink(existing);
      this.#effects.closeLink(existing.id, "duplicate");
    }

    this.#links.set(peer.id, {
      id: link,
      peer: peer.id,
      outbound,
      openedMs: now,
    });
    this.#linkPeers.set(link, peer.id);
    this.#members.upsert(peer, now);
    this.#members.touch(peer.id, now);
    this.counters.inc("links_opened", { direction: outbound ? "out" : "in" });
    this.#effects.emit({ type: "link_up", peer: peer.id, outbound });
    this.#effects.send(link, this.#membersFrame());

    if (
      this.#shufflePending && outbound &&
      this.#links.size > this.#settings.activeViewSize
    ) {
      this.#shufflePending = false;
      this.#dropRandomOutbound(peer.id);
    }
    this.#flush();
    return "accepted";
  }

  /** Records that a link closed, for whatever reason. */
  linkClosed(link: number): void {
    const peer = this.#linkPeers.get(link);
    if (peer === undefined) return;
    this.#linkPeers.delete(link);
    const current = this.#links.get(peer);
    if (current?.id !== link) return;
    this.#removeLink(current);
    this.#flush();
  }

  /** Records a dial that failed before the peer's hello arrived. */
  dialFailed(url: string): void {
    this.#planner.failed(url, this.#now());
  }

  /** Handles a frame from a registered link. Frames are already validated. */
  receive(link: number, frame: Frame): void {
    const peer = this.#linkPeers.get(link);
    if (peer === undefined) return;
    this.#members.touch(peer, this.#now());
    switch (frame.type) {
      case "rumor":
        this.#receiveRumor(link, peer, frame);
        break;
      case "feedback":
        this.#receiveFeedback(peer, frame);
        break;
      case "members":
        for (const member of frame.members) {
          this.#members.upsert(member, this.#now());
        }
        break;
      case "sync_request": {
        const body = this.handleSyncRequest(frame.body, peer);
        this.#effects.send(link, {
          v: 1,
          type: "sync_response",
          rid: frame.rid,
          body,
        });
        break;
      }
      case "sync_response":
        this.#continueSync(frame.rid, frame.body);
        break;
      case "bye":
        this.#members.setState(peer, "left");
        break;
      case "hello":
      case "ping":
      case "pong":
        break;
    }
    this.#flush();
  }

  // ---- Timers ------------------------------------------------------------------

  /**
   * Runs one gossip round and any periodic work that is due: link upkeep,
   * reshuffles, anti-entropy, session timeouts and tombstone collection.
   * Call it every `gossipIntervalMs`.
   */
  tick(): void {
    const now = this.#now();
    if (now >= this.#nextStaleCheckMs) {
      this.#nextStaleCheckMs = now + this.#collectIntervalMs();
      this.#quarantineIfStale(now);
    }
    this.#spread();
    this.#keepLinks(now);
    if (now >= this.#nextShuffleMs) {
      this.#nextShuffleMs = now + this.#settings.shuffleIntervalMs;
      this.#shuffle(now);
    }
    if (now >= this.#nextSyncMs) {
      this.#nextSyncMs = now + this.#syncDelay();
      this.#startSync();
    }
    this.#expireSessions(now);
    if (now >= this.#nextCollectMs) {
      this.#nextCollectMs = now + this.#collectIntervalMs();
      this.#collectTombstones(now);
    }
    this.#flush();
  }

  // ---- Anti-entropy --------------------------------------------------------------

  /**
   * Answers one anti-entropy request: merges the entries it pushes, then
   * compares tree nodes and returns wanted entries. Used for WebSocket and
   * HTTP requests alike.
   */
  handleSyncRequest(request: SyncRequest, from: string): SyncResponse {
    const repaired: Entry[] = [];
    for (const entry of request.push) {
      if (this.#merge(entry, "push", from) === "applied") repaired.push(entry);
    }
    this.#spreadRepaired(
      repaired.slice(0, this.#settings.antiEntropyRumorLimit),
      from,
    );
    const response = answerSync(this.#replica, request, this.#syncLimits());
    this.counters.inc("sync_requests_answered");
    this.#flush();
    return this.#vouches() ? response : { ...response, quarantined: true };
  }

  /**
   * Opens an anti-entropy session for the adapter to run over HTTP. Returns
   * `undefined` while another HTTP session is running.
   */
  openHttpSync(peer: string): HttpSyncDriver | undefined {
    if (this.#httpSyncRunning) return undefined;
    this.#httpSyncRunning = true;
    const url = this.#httpSyncUrl;
    this.#httpSyncUrl = undefined;
    const session = new SyncSession(this.#replica, this.#syncLimits());
    const repair = this.#newRepairState();
    return {
      first: () => session.first(),
      next: (response) => {
        const request = this.#nextSyncStep(session, repair, peer, response);
        this.#flush();
        return request;
      },
      finish: (error) => {
        this.#httpSyncRunning = false;
        if (url !== undefined) {
          if (error === undefined) this.#syncTargets.succeeded(url);
          else this.#syncTargets.failed(url, this.#now());
        }
        this.#finishSync(peer, "http", session.stats, error, repair);
        this.#flush();
      },
    };
  }

  // ---- Internals -------------------------------------------------------------------

  #restore(state: NodeState): void {
    this.#lastSyncMs = state.lastSyncMs;
    let highest: Version | undefined = state.clock;
    for (const entry of state.entries) {
      this.#replica.apply(entry);
      if (!highest || compareVersions(entry.version, highest) > 0) {
        highest = entry.version;
      }
    }
    if (highest) this.#clock.restore(highest);
    for (const record of state.rumors) {
      const entry = this.#replica.get(record.key);
      if (entry && compareVersions(entry.version, record.version) === 0) {
        this.#rumors.add(record.key, record.version, [], record);
      }
    }
  }

  #checkEntry(change: Change): EntryProblem | undefined {
    const limits: EntryLimits = this.#settings;
    const keyProblem = checkKey(change.key, limits);
    if (keyProblem) return { code: "invalid_key", message: keyProblem };
    if (change.value === null) return undefined;
    const valueProblem = checkValue(change.value, limits);
    if (valueProblem) return { code: "value_too_large", message: valueProblem };
    try {
      JSON.parse(change.value);
    } catch {
      return {
        code: "invalid_value",
        message: `Value of ${change.key} is not valid JSON text`,
      };
    }
    return undefined;
  }

  /** Merges a remote entry; returns what happened to it. */
  #merge(
    entry: Entry,
    source: Exclude<ChangeSource, "local">,
    from: string,
  ): "applied" | "duplicate" | "stale" | "rejected" {
    const problem = this.#checkEntry(entry);
    if (problem) return this.#reject(entry, "invalid", problem.message, from);

    const now = this.#now();
    const driftMs = entry.version[0] - now;
    if (driftMs > this.#settings.maxClockDriftMs) {
      return this.#reject(
        entry,
        "future_version",
        `Version of ${
          updateId(entry)
        } is ${driftMs} ms ahead of local time; the maximum drift is ${this.#settings.maxClockDriftMs} ms`,
        from,
      );
    }

    const quarantined = this.#quarantine.get(entry.key);
    if (quarantined) this.#settleQuarantined(entry, quarantined, from);

    const current = this.#replica.get(entry.key);
    if (current) {
      const order = compareVersions(entry.version, current.version);
      if (order === 0) {
        this.counters.inc("duplicates_received", { source });
        return "duplicate";
      }
      if (order < 0) return "stale";
    } else if (
      !quarantined && entry.version[0] < now - this.#settings.tombstoneTtlMs
    ) {
      // Older than the tombstone horizon and unknown here: either every
      // node already has it, or it was deleted and the tombstone collected.
      // Pushing it would bring a deleted key back, so only a pull (a node
      // filling itself from a peer) may add it.
      if (source !== "pull" || entry.value === null) {
        return this.#reject(
          entry,
          "expired",
          `Version of ${
            updateId(entry)
          } is older than the tombstone lifetime and the key is unknown here`,
          from,
        );
      }
    }

    this.#replica.apply(entry);
    this.#clock.observe(entry.version);
    this.#ops.push({ type: "entry", entry });
    if (source === "rumor") {
      this.#rumors.add(entry.key, entry.version, [from]);
      this.#ops.push({
        type: "rumor",
        rumor: {
          key: entry.key,
          version: entry.version,
          sends: 0,
          duplicates: 0,
        },
      });
    }
    this.counters.inc("updates_applied", { source });
    this.#effects.emit({
      type: "change",
      entry,
      previous: current,
      source,
      from,
    });
    return "applied";
  }

  #reject(
    entry: Entry,
    reason: RejectReason,
    message: string,
    from: string,
  ): "rejected" {
    this.counters.inc("entries_rejected", { reason });
    this.#effects.emit({
      type: "rejected",
      key: entry.key,
      reason,
      from,
      message,
    });
    return "rejected";
  }

  #receiveRumor(link: number, peer: string, frame: FrameOf<"rumor">): void {
    const fresh = new Set<string>();
    const known: [string, Version][] = [];
    const newerHere: Entry[] = [];
    for (const entry of frame.entries) {
      const result = this.#merge(entry, "rumor", peer);
      if (result === "applied") {
        fresh.add(entry.key);
      } else if (result === "duplicate") {
        known.push([entry.key, entry.version]);
        this.#markInformed(entry.key, entry.version, peer, false);
      } else if (result === "stale") {
        // The peer spreads an older version: hand it the newer one.
        newerHere.push(this.#replica.get(entry.key)!);
      }
    }
    if (known.length > 0) {
      this.#effects.send(link, { v: 1, type: "feedback", known });
    }
    if (newerHere.length > 0) this.#sendEntries(link, newerHere);
    if (this.#settings.rumorFirstPush === "at_once") this.#spread(fresh);
  }

  #receiveFeedback(peer: string, frame: FrameOf<"feedback">): void {
    for (const [key, version] of frame.known) {
      this.#markInformed(key, version, peer, true);
    }
  }

  #markInformed(
    key: string,
    version: Version,
    peer: string,
    duplicate: boolean,
  ): void {
    const reason = this.#rumors.markInformed(key, version, peer, duplicate);
    if (reason) this.#rumorRemoved(key, reason);
  }

  #rumorRemoved(key: string, reason: RemovalReason): void {
    this.#ops.push({ type: "rumor_done", key });
    this.counters.inc("rumors_removed", { reason });
    this.#effects.emit({ type: "rumor_removed", key, reason });
  }

  /** Pushes infective rumors, or only those of `keys`, to random links. */
  #spread(keys?: ReadonlySet<string>): void {
    if (keys?.size === 0 || this.#rumors.size === 0) return;
    const { pushes, removed } = this.#rumors.plan(
      [...this.#links.keys()],
      this.#settings.fanout,
      this.#settings.maxEntriesPerFrame,
      this.#random,
      keys,
    );
    for (const [peer, rumors] of pushes) {
      const link = this.#links.get(peer);
      if (!link) continue;
      const entries: Entry[] = [];
      for (const rumor of rumors) {
        const entry = this.#replica.get(rumor.key);
        if (entry && compareVersions(entry.version, rumor.version) === 0) {
          entries.push(entry);
        }
      }
      this.counters.inc("rumor_shares", {}, entries.length);
      this.#sendEntries(link.id, entries);
    }
    for (const [key, reason] of removed) this.#rumorRemoved(key, reason);
  }

  /** Sends entries as rumor frames, split to fit the frame limits. */
  #sendEntries(link: number, entries: readonly Entry[]): void {
    const budget = this.#settings.maxFrameBytes / 2;
    let batch: Entry[] = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = entrySize(entry);
      const full = batch.length >= this.#settings.maxEntriesPerFrame ||
        (batch.length > 0 && bytes + size > budget);
      if (full) {
        this.#effects.send(link, { v: 1, type: "rumor", entries: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += size;
    }
    if (batch.length > 0) {
      this.#effects.send(link, { v: 1, type: "rumor", entries: batch });
    }
  }

  #prefersNewLink(existing: Link, outbound: boolean, peer: string): boolean {
    const existingDialer = existing.outbound ? this.id : peer;
    const newDialer = outbound ? this.id : peer;
    // The same side dialled twice: the old link is probably dead.
    if (existingDialer === newDialer) return true;
    // Both sides dialled at once: both keep the link the lower id dialled.
    const lower = this.id < peer ? this.id : peer;
    return newDialer === lower;
  }

  #removeLink(link: Link): void {
    this.#links.delete(link.peer);
    this.#linkPeers.delete(link.id);
    for (const [rid, open] of this.#sessions) {
      if (open.link === link.id) {
        this.#sessions.delete(rid);
        this.#finishSync(open.peer, "ws", open.session.stats, "link closed");
      }
    }
    this.#effects.emit({ type: "link_down", peer: link.peer });
  }

  #membersFrame(): Frame {
    const infos = shuffle(this.#members.infos(), this.#random)
      .slice(0, MEMBERS_PER_FRAME);
    return { v: 1, type: "members", members: infos };
  }

  /** URLs worth dialling: known members and seeds not linked yet. */
  #dialCandidates(): string[] {
    const linkedUrls = new Set<string>();
    const candidates: string[] = [];
    for (const member of this.#members.others()) {
      if (!member.url) continue;
      if (this.#links.has(member.id)) linkedUrls.add(member.url);
      else candidates.push(member.url);
    }
    for (const seed of this.#settings.seeds) {
      if (!linkedUrls.has(seed)) candidates.push(seed);
    }
    return candidates.filter((url) => !this.#selfUrls.has(url));
  }

  #keepLinks(now: number): void {
    const missing = this.#settings.activeViewSize - this.#links.size -
      this.#planner.dialing;
    if (missing <= 0) return;
    for (
      const url of this.#planner.choose(this.#dialCandidates(), missing, now)
    ) {
      this.#effects.dial(url);
    }
  }

  /**
   * Dials one random instance not linked yet; when that link opens, a random
   * other dialled link is closed, so the overlay keeps changing.
   */
  #shuffle(now: number): void {
    const linkList = [...this.#links.values()];
    if (linkList.length > 0) {
      const target = linkList[Math.floor(this.#random() * linkList.length)]!;
      this.#effects.send(target.id, this.#membersFrame());
    }
    if (this.#links.size < this.#settings.activeViewSize) return;
    const [url] = this.#planner.choose(this.#dialCandidates(), 1, now);
    if (!url) return;
    this.#shufflePending = true;
    this.#effects.dial(url);
  }

  #dropRandomOutbound(keep: string): void {
    const outbound = [...this.#links.values()].filter((link) =>
      link.outbound && link.peer !== keep
    );
    if (outbound.length === 0) return;
    const victim = outbound[Math.floor(this.#random() * outbound.length)]!;
    this.#removeLink(victim);
    this.#effects.closeLink(victim.id, "shuffle");
  }

  #syncDelay(): number {
    const { antiEntropyIntervalMs, antiEntropyJitter } = this.#settings;
    const spread = antiEntropyIntervalMs * antiEntropyJitter;
    return antiEntropyIntervalMs - spread + this.#random() * 2 * spread;
  }

  #syncLimits(): SyncLimits {
    return {
      maxEntries: this.#settings.maxEntriesPerFrame,
      maxEntryBytes: this.#settings.maxFrameBytes / 2,
      // A quarantined node must pull to settle its quarantine.
      direction: this.#quarantine.size > 0 &&
          this.#settings.antiEntropyMode === "push"
        ? "push-pull"
        : this.#settings.antiEntropyMode,
    };
  }

  /**
   * Starts a session with a peer chosen among every reachable instance (see
   * sync_targets.ts): over its link when linked, over HTTP otherwise.
   */
  #startSync(): void {
    let wsBusy = false;
    for (const open of this.#sessions.values()) {
      if (open.link !== undefined) wsBusy = true;
    }
    const target = this.#syncTargets.choose({
      linked: wsBusy ? [] : [...this.#links.keys()],
      urls: this.#dialCandidates(),
      httpBusy: this.#httpSyncRunning,
    }, this.#now());
    if (!target) return;
    if (target.via === "http") {
      this.#httpSyncUrl = target.url;
      this.#effects.syncOverHttp(target.url);
      return;
    }
    const link = this.#links.get(target.peer)!;
    const session = new SyncSession(this.#replica, this.#syncLimits());
    const rid = this.#nextRequestId++;
    this.#sessions.set(rid, {
      session,
      peer: link.peer,
      link: link.id,
      startedMs: this.#now(),
      repair: this.#newRepairState(),
    });
    this.#effects.send(link.id, {
      v: 1,
      type: "sync_request",
      rid,
      body: session.first(),
    });
  }

  #continueSync(rid: number, response: SyncResponse): void {
    const open = this.#sessions.get(rid);
    if (!open || open.link === undefined) return;
    const request = this.#nextSyncStep(
      open.session,
      open.repair,
      open.peer,
      response,
    );
    if (!request) {
      this.#sessions.delete(rid);
      this.#finishSync(
        open.peer,
        "ws",
        open.session.stats,
        undefined,
        open.repair,
      );
      return;
    }
    this.#effects.send(open.link, {
      v: 1,
      type: "sync_request",
      rid,
      body: request,
    });
  }

  #finishSync(
    peer: string,
    via: "ws" | "http",
    stats: SyncStats,
    error?: string,
    repair?: RepairState,
  ): void {
    const ok = error === undefined;
    this.counters.inc("sync_sessions", { via, result: ok ? "ok" : "failed" });
    if (ok && repair?.vouched) {
      this.#lastSyncMs = this.#now();
      if (this.#quarantine.endsWith(repair.serial)) this.#endQuarantine();
    }
    this.#effects.emit({ type: "sync_done", peer, via, ok, stats, error });
  }

  #newRepairState(): RepairState {
    return { serial: ++this.#sessionSerial, vouched: true, rumored: 0 };
  }

  /**
   * Merges one response of an initiated session, spreads what it repaired
   * (up to `antiEntropyRumorLimit` per session), and returns the next
   * request, if any.
   */
  #nextSyncStep(
    session: SyncSession,
    repair: RepairState,
    peer: string,
    response: SyncResponse,
  ): SyncRequest | undefined {
    if (response.quarantined) repair.vouched = false;
    const repaired: Entry[] = [];
    const request = session.next(response, (entry) => {
      const result = this.#merge(entry, "pull", peer);
      const budget = this.#settings.antiEntropyRumorLimit - repair.rumored;
      if (result === "applied" && repaired.length < budget) {
        repaired.push(entry);
      }
    });
    repair.rumored += repaired.length;
    this.#spreadRepaired(repaired, peer);
    return request;
  }

  /**
   * Spreads entries that anti-entropy repaired as new rumors. After a
   * partition heals, one session across the former cut then carries each
   * side's news to the whole other side at rumor speed.
   */
  #spreadRepaired(entries: readonly Entry[], from: string): void {
    if (entries.length === 0) return;
    const keys = new Set<string>();
    for (const entry of entries) {
      keys.add(entry.key);
      this.#rumors.add(entry.key, entry.version, [from]);
      this.#ops.push({
        type: "rumor",
        rumor: {
          key: entry.key,
          version: entry.version,
          sends: 0,
          duplicates: 0,
        },
      });
    }
    this.counters.inc("repairs_rumored", {}, entries.length);
    if (this.#settings.rumorFirstPush === "at_once") this.#spread(keys);
  }

  /** Whether this node's sync answers can end a peer's quarantine. */
  #vouches(): boolean {
    const now = this.#now();
    return this.#quarantine.size === 0 &&
      !isStale(this.#lastSyncMs, now, this.#settings.tombstoneTtlMs) &&
      (this.#lastSyncMs !== undefined || this.#replica.size > 0);
  }

  /**
   * Quarantines entries older than the tombstone horizon while this node
   * is stale; see quarantine.ts for the rule.
   */
  #quarantineIfStale(now: number): void {
    const ttl = this.#settings.tombstoneTtlMs;
    if (!isStale(this.#lastSyncMs, now, ttl)) return;
    const moved = this.#quarantine.enter(
      this.#replica,
      now - ttl,
      this.#sessionSerial,
    );
    if (moved === 0) return;
    this.counters.inc("entries_quarantined", {}, moved);
    this.#effects.emit({
      type: "quarantine",
      phase: "entered",
      entries: moved,
    });
    // Settle the quarantine at the next tick instead of one interval later.
    this.#nextSyncMs = now;
  }

  /** Settles a quarantined key with a copy of it that a peer sent. */
  #settleQuarantined(copy: Entry, held: Entry, from: string): void {
    this.#quarantine.take(held.key);
    const order = compareVersions(copy.version, held.version);
    if (order > 0) {
      // The copy replaces it; the merge that follows stores the copy.
      this.#ops.push({ type: "forget", key: held.key });
      this.counters.inc("quarantine_settled", { outcome: "replaced" });
      return;
    }
    // The peer holds the key, so the fleet did not forget it.
    this.#replica.apply(held);
    this.counters.inc("quarantine_settled", { outcome: "kept" });
    if (order < 0) this.#spreadRepaired([held], from);
  }

  /** Drops every entry still quarantined: no vouching peer held them. */
  #endQuarantine(): void {
    const dropped = this.#quarantine.drain();
    for (const entry of dropped) {
      this.#ops.push({ type: "forget", key: entry.key });
    }
    this.counters.inc(
      "quarantine_settled",
      { outcome: "dropped" },
      dropped.length,
    );
    this.#effects.emit({
      type: "quarantine",
      phase: "ended",
      entries: dropped.length,
    });
  }

  #expireSessions(now: number): void {
    for (const [rid, open] of this.#sessions) {
      if (now - open.startedMs > this.#settings.syncTimeoutMs) {
        this.#sessions.delete(rid);
        this.#finishSync(open.peer, "ws", open.session.stats, "timed out");
      }
    }
  }

  #collectIntervalMs(): number {
    return Math.max(1000, Math.min(this.#settings.tombstoneTtlMs / 4, 60_000));
  }

  /** Forgets tombstones older than the tombstone lifetime. */
  #collectTombstones(now: number): void {
    // A stale node may hold the only tombstone of a key that another stale
    // node still holds alive; it keeps them until it is fresh again.
    if (isStale(this.#lastSyncMs, now, this.#settings.tombstoneTtlMs)) return;
    const horizon = now - this.#settings.tombstoneTtlMs;
    const expired: string[] = [];
    for (const entry of this.#replica.entries()) {
      if (entry.value === null && entry.version[0] < horizon) {
        expired.push(entry.key);
      }
    }
    for (const key of expired) {
      this.#replica.forget(key);
      this.#ops.push({ type: "forget", key });
    }
    if (expired.length > 0) {
      this.counters.inc("tombstones_collected", {}, expired.length);
    }
  }

  #flush(): void {
    if (this.#ops.length === 0) return;
    const ops = this.#ops;
    this.#ops = [];
    this.#effects.persist(ops);
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
