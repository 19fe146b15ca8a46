/**
 * The Grapevine protocol core: one node's state machine, free of I/O.
 *
 * The node is driven by calls (a link opened, a frame arrived, a timer
 * fired, a client wrote) and responds through {@link NodeEffects}: frames to
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
 * Membership runs beside it: SWIM probes decide who is alive (swim.ts), the
 * member table orders news by incarnation (membership.ts), and membership
 * updates ride along on outgoing frames (broadcasts.ts). The overlay picks
 * which members to keep links to (overlay.ts).
 *
 * @module
 */

import { effectiveShareLimit } from "../config.ts";
import { BroadcastQueue } from "./broadcasts.ts";
import { compareVersions, HybridClock, type Version } from "./clock.ts";
import {
  checkKey,
  checkValue,
  compareEntries,
  type Entry,
  type EntryLimits,
  jsonDepth,
  MAX_VALUE_DEPTH,
  updateId,
} from "./entry.ts";
import { Counters } from "./counters.ts";
import { type Member, MemberTable } from "./membership.ts";
import {
  type Frame,
  type FrameOf,
  MAX_PIGGYBACK,
  type MemberInfo,
  type MemberUpdate,
  type SyncRequest,
  type SyncResponse,
} from "./messages.ts";
import type {
  Change,
  ChangeSource,
  EntryAdmission,
  EntryProblem,
  HttpSyncDriver,
  NodeEffects,
  NodeOptions,
  NodeSettings,
  NodeState,
  PersistOp,
  RejectReason,
} from "./node_types.ts";
import { newRumorOp, WriteError } from "./node_types.ts";
import { type Link, type LinkDecision, Overlay } from "./overlay.ts";
import { AntiEntropy, collectIntervalMs } from "./anti_entropy.ts";
import { Dissemination } from "./dissemination.ts";
import { Replica } from "./replica.ts";
import { type RemovalReason, RumorBuffer, type RumorRecord } from "./rumors.ts";
import { FailureDetector, type ProbeFrame } from "./swim.ts";

export * from "./node_types.ts";
export type { LinkDecision } from "./overlay.ts";

/** Membership updates carried by one frame. */
const PIGGYBACK_PER_FRAME = 16;
/** Membership updates queued at most. */
const MAX_QUEUED_UPDATES = 4096;

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
 *     datagram() {}, persist() {}, emit() {},
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
  readonly #admitEntry: EntryAdmission | undefined;
  readonly #clock: HybridClock;
  readonly #replica = new Replica();
  readonly #rumors: RumorBuffer;
  readonly #members: MemberTable;
  readonly #broadcasts = new BroadcastQueue(MAX_QUEUED_UPDATES);
  readonly #overlay: Overlay;
  readonly #detector: FailureDetector;
  readonly #antiEntropy: AntiEntropy;
  readonly #dissemination: Dissemination;
  #ops: PersistOp[] = [];
  #nextCollectMs: number;

  constructor(options: NodeOptions) {
    const { settings, self, now, random, effects, state } = options;
    this.#settings = settings;
    this.#now = now;
    this.#random = random;
    this.#effects = effects;
    this.counters = options.counters ?? new Counters();
    this.#admitEntry = options.admitEntry;
    this.#clock = new HybridClock(self.id, now, settings.maxClockDriftMs);
    this.#members = new MemberTable(self, now(), settings.maxMembers);
    this.#rumors = new RumorBuffer({
      shareLimit: () => effectiveShareLimit(settings, this.#members.liveCount),
      feedbackLimit: settings.feedbackLimit,
      maxRumors: settings.maxRumors,
    });
    const host = {
      members: this.#members,
      counters: this.counters,
      now,
      random,
    };
    this.#overlay = new Overlay(settings, {
      ...host,
      dial: (url) => effects.dial(url),
      send: (link, frame) => this.#send(link, frame),
      closeLink: (link, reason) => effects.closeLink(link, reason),
      carriesTree: (peer) => this.#dissemination.isEager(peer),
    });
    this.#detector = new FailureDetector(settings, {
      ...host,
      sendTo: (member, frame) => this.#sendTo(member, frame),
      declare: (update) => this.#declare(update),
    });
    this.#dissemination = new Dissemination({
      settings,
      counters: this.counters,
      overlay: this.#overlay,
      rumors: this.#rumors,
      replica: this.#replica,
      random,
      send: (link, frame) => this.#send(link, frame),
      rumorRemoved: (key, reason) => this.#rumorRemoved(key, reason),
    });
    this.#antiEntropy = new AntiEntropy({
      ...host,
      settings,
      replica: this.#replica,
      overlay: this.#overlay,
      rumors: this.#rumors,
      merge: (entry, source, from) => this.#merge(entry, source, from),
      spread: (keys) => this.#dissemination.spread(keys),
      send: (link, frame) => this.#send(link, frame),
      syncOverHttp: (url) => effects.syncOverHttp(url),
      emit: (event) => effects.emit(event),
      persist: (op) => this.#ops.push(op),
      flush: () => this.#flush(),
    });
    if (state) this.#restore(state);
    // Tell the fleet this node is here; the news rides on the first frames.
    this.#broadcasts.enqueue(MemberTable.update(this.#members.self));

    const start = now();
    this.#nextCollectMs = start +
      collectIntervalMs(this.#settings.tombstoneTtlMs);
  }

  // ---- Reads ---------------------------------------------------------------

  /** This node's id. */
  get id(): string {
    return this.#members.self.id;
  }

  /** This node's member record. */
  get self(): MemberInfo {
    return MemberTable.info(this.#members.self);
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
    return this.#antiEntropy.lastSyncMs;
  }

  /** Number of entries in quarantine; see quarantine.ts. */
  get quarantined(): number {
    return this.#antiEntropy.quarantined;
  }

  /** Local health score of the failure detector (0 is healthy). */
  get awareness(): number {
    return this.#detector.awareness;
  }

  /** Suspicion timeout for the current fleet size, in milliseconds. */
  get suspicionTimeoutMs(): number {
    return this.#detector.suspicionTimeoutMs();
  }

  /** Member ids in the passive view. */
  get passiveView(): string[] {
    return [...this.#overlay.passive];
  }

  /** Links the overlay aims to keep open. */
  get targetLinks(): number {
    return this.#overlay.targetSize();
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
    return [...this.#overlay.links.values()].map((
      { peer, outbound, openedMs },
    ) => ({ peer, outbound, openedMs }));
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
      const problem = this.#checkEntry(change) ??
        this.#checkGivenVersion(change);
      if (problem) throw new WriteError(change.key, problem);
    }
    const entries: Entry[] = [];
    const ops: PersistOp[] = [];
    for (const change of changes) {
      const entry = this.#stamp(change);
      entries.push(entry);
      ops.push({ type: "entry", entry }, newRumorOp(entry));
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
      this.#antiEntropy.release(entry.key);
      const previous = this.#replica.get(entry.key);
      if (!this.#replica.apply(entry)) continue;
      fresh.add(entry.key);
      this.#rumors.add(entry.key, entry.version);
      this.counters.inc("updates_applied", { source: "local" });
      this.#dissemination.noteApplied(entry);
      this.#effects.emit({
        type: "change",
        entry,
        previous,
        source: "local",
        from: undefined,
      });
    }
    if (this.#settings.rumorFirstPush === "at_once") {
      this.#dissemination.spread(fresh);
    }
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
    const { decision, replaced } = this.#overlay.opened(
      link,
      peer,
      outbound,
      dialedUrl,
    );
    if (decision === "full") {
      // Before turning the peer away, tell it whom else it can dial.
      this.#send(link, this.#overlay.membersFrame());
    }
    if (decision !== "accepted") return decision;

    if (replaced) {
      this.#linkGone(replaced, false);
      this.#effects.closeLink(replaced.id, "duplicate");
    }
    this.#declare({ ...peer, state: "alive" });
    this.#members.touch(peer.id, this.#now());
    this.#effects.emit({ type: "link_up", peer: peer.id, outbound });
    this.#send(link, this.#overlay.membersFrame());
    this.#flush();
    return "accepted";
  }

  /** Records that a link closed, for whatever reason. */
  linkClosed(link: number): void {
    const closed = this.#overlay.closed(link);
    if (!closed) return;
    this.#linkGone(closed);
    // A dropped link is a hint, not proof: probe the peer now.
    this.#detector.probeSoon(closed.peer);
    this.#flush();
  }

  /** Records a dial that failed before the peer's hello arrived. */
  dialFailed(url: string): void {
    this.#overlay.dialFailed(url);
  }

  /** Handles a frame from a registered link. Frames are already validated. */
  receive(link: number, frame: Frame): void {
    const peer = this.#overlay.peerOf(link);
    if (peer === undefined) return;
    this.#members.touch(peer, this.#now());
    if (this.#overlay.sideOf(peer) === "remote") {
      this.counters.inc("frames_cross_region_in", { type: frame.type });
    }
    if ("updates" in frame && frame.updates) this.#applyUpdates(frame.updates);
    switch (frame.type) {
      case "rumor":
        this.#receiveRumor(link, peer, frame);
        break;
      case "feedback":
        this.#receiveFeedback(peer, frame);
        break;
      case "ihave":
        this.#dissemination.receiveIHave(link, peer, frame);
        break;
      case "graft":
        this.#dissemination.receiveGraft(link, peer, frame);
        break;
      case "members":
        this.#receiveMembers(frame);
        break;
      case "probe": {
        const ack = this.#detector.onProbe(frame);
        if (ack) this.#send(link, ack);
        break;
      }
      case "probe_ack":
        this.#detector.onAck(frame);
        break;
      case "shuffle":
        this.#overlay.onShuffle(link, frame);
        break;
      case "sync_request": {
        const body = this.handleSyncRequest(frame.body, peer);
        this.#send(link, {
          v: 1,
          type: "sync_response",
          rid: frame.rid,
          body,
        });
        break;
      }
      case "sync_response":
        this.#antiEntropy.continueSync(frame.rid, frame.body);
        break;
      case "bye": {
        const member = this.#members.get(peer);
        if (member) {
          this.#declare({ ...MemberTable.info(member), state: "left" });
        }
        break;
      }
      case "hello":
      case "ping":
      case "pong":
        break;
    }
    this.#flush();
  }

  /**
   * Handles a frame that arrived without a link (`POST /v1/probe`): probes,
   * acknowledgements and their membership updates. Returns the response to
   * send back, if any.
   */
  handleDatagram(frame: Frame): Frame | undefined {
    let answer: Frame | undefined;
    if (frame.type === "probe" || frame.type === "probe_ack") {
      this.#declare({ ...frame.from, state: "alive" }, true);
      this.#members.touch(frame.from.id, this.#now());
      if (frame.updates) this.#applyUpdates(frame.updates);
      if (frame.type === "probe") {
        const ack = this.#detector.onProbe(frame);
        if (ack) answer = this.#withUpdates(ack);
      } else {
        this.#detector.onAck(frame);
      }
    }
    this.#flush();
    return answer;
  }

  /**
   * Announces a graceful leave: marks this node `left` with a higher
   * incarnation and sends that news on every link, so peers need not wait
   * for the failure detector. Call it before closing the links.
   */
  leave(): void {
    const now = this.#now();
    this.#members.bumpIncarnation();
    this.#members.setSelfState("left", now);
    const update = MemberTable.update(this.#members.self);
    for (const link of this.#overlay.links.values()) {
      this.#effects.send(link.id, {
        v: 1,
        type: "members",
        members: [],
        updates: [update],
      });
    }
  }

  // ---- Timers ------------------------------------------------------------------

  /**
   * Runs one gossip round and any periodic work that is due: probes, link
   * upkeep, shuffles, anti-entropy, session timeouts and tombstone
   * collection. Call it every `gossipIntervalMs`.
   */
  tick(): void {
    const now = this.#now();
    if (this.#members.self.state === "left") return;
    this.#dissemination.spread();
    this.#dissemination.lazyPush(now);
    this.#dissemination.keepEager();
    this.#detector.tick();
    this.#overlay.tick();
    this.#antiEntropy.tick(now);
    if (now >= this.#nextCollectMs) {
      this.#nextCollectMs = now +
        collectIntervalMs(this.#settings.tombstoneTtlMs);
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
    return this.#antiEntropy.handleSyncRequest(request, from);
  }

  /**
   * Opens an anti-entropy session for the adapter to run over HTTP. Returns
   * `undefined` while another HTTP session is running.
   */
  openHttpSync(peer: string): HttpSyncDriver | undefined {
    return this.#antiEntropy.openHttpSync(peer);
  }

  // ---- Internals -------------------------------------------------------------------

  #restore(state: NodeState): void {
    this.#antiEntropy.restore(state.lastSyncMs);
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

  /** Builds the entry of a change: the given version, or a new one. */
  #stamp(change: Change): Entry {
    const { key, value, sig } = change;
    let version = change.version;
    if (version) this.#clock.observe(version);
    else version = this.#clock.tick();
    return sig === undefined ? { key, value, version } : {
      key,
      value,
      version,
      sig,
    };
  }

  /** Checks a version that a publisher stamped, as a remote one would be. */
  #checkGivenVersion(change: Change): EntryProblem | undefined {
    const version = change.version;
    if (!version) return undefined;
    const driftMs = version[0] - this.#now();
    if (driftMs > this.#settings.maxClockDriftMs) {
      return {
        code: "future_version",
        message:
          `Version of ${change.key} is ${driftMs} ms ahead of this instance's clock; the maximum drift is ${this.#settings.maxClockDriftMs} ms, so check the publisher's clock`,
      };
    }
    const current = this.#replica.get(change.key);
    if (current && compareVersions(version, current.version) <= 0) {
      return {
        code: "stale_version",
        message: `Version of ${change.key} is not newer than the version ${
          updateId(current)
        } held here; check the publisher's clock and sign again`,
      };
    }
    return undefined;
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
    const depth = jsonDepth(change.value);
    if (depth > MAX_VALUE_DEPTH) {
      return {
        code: "invalid_value",
        message:
          `Value of ${change.key} nests arrays and objects ${depth} levels deep, more than the maximum of ${MAX_VALUE_DEPTH}`,
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
    const refusal = this.#admitEntry?.(entry);
    if (refusal) {
      return this.#reject(entry, refusal.reason, refusal.message, from);
    }

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

    const quarantined = this.#antiEntropy.quarantinedEntry(entry.key);
    if (quarantined) this.#antiEntropy.settle(entry, quarantined, from);

    const current = this.#replica.get(entry.key);
    if (current) {
      const order = compareEntries(entry, current);
      if (order === 0) {
        this.counters.inc("duplicates_received", { source });
        return "duplicate";
      }
      if (compareVersions(entry.version, current.version) === 0) {
        this.counters.inc("version_conflicts");
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
      this.#ops.push(newRumorOp(entry));
    }
    this.counters.inc("updates_applied", { source });
    if (source === "rumor") this.#dissemination.noteApplied(entry);
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
        this.#dissemination.prune(peer);
      } else if (result === "stale") {
        // The peer spreads an older version: hand it the newer one.
        newerHere.push(this.#replica.get(entry.key)!);
      }
    }
    if (fresh.size > 0) this.#dissemination.delivered(peer);
    if (known.length > 0) {
      this.#effects.send(link, { v: 1, type: "feedback", known });
    }
    if (newerHere.length > 0) {
      this.#dissemination.sendEntries(link, newerHere);
    }
    if (this.#settings.rumorFirstPush === "at_once") {
      this.#dissemination.spread(fresh);
    }
  }

  #receiveFeedback(peer: string, frame: FrameOf<"feedback">): void {
    this.#dissemination.prune(peer);
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

  // ---- Membership -------------------------------------------------------------------

  /**
   * Applies a membership update and passes it on when it was news. With
   * `quiet`, news is applied but not announced (a member speaking for
   * itself in a probe does not need spreading by every receiver).
   */
  #declare(update: MemberUpdate, quiet = false): void {
    const before = this.#members.get(update.id)?.state;
    const result = this.#members.apply(update, this.#now());
    if (result === "table_full" || result === "future_incarnation") {
      this.counters.inc("member_updates_rejected", { reason: result });
      return;
    }
    if (result === "refuted") {
      this.#detector.noteRefutation();
      this.counters.inc("refutations");
      const self = MemberTable.update(this.#members.self);
      this.#broadcasts.enqueue(self);
      this.#effects.emit({
        type: "member",
        id: self.id,
        state: "alive",
        previous: "alive",
        incarnation: self.incarnation,
      });
      return;
    }
    if (result !== "changed") return;
    const member = this.#members.get(update.id)!;
    if (!quiet || member.state !== "alive" || before !== undefined) {
      this.#broadcasts.enqueue(MemberTable.update(member));
    }
    if (member.state === before) return;
    this.counters.inc("member_changes", { state: member.state });
    this.#effects.emit({
      type: "member",
      id: member.id,
      state: member.state,
      previous: before,
      incarnation: member.incarnation,
    });
    if (member.state === "alive") {
      this.#overlay.learn([member.id]);
    } else if (member.state === "dead" || member.state === "left") {
      const link = this.#overlay.drop(member.id, "goingAway");
      if (link) this.#linkGone(link);
    }
  }

  #applyUpdates(updates: readonly MemberUpdate[]): void {
    for (const update of updates) this.#declare(update);
  }

  #receiveMembers(frame: FrameOf<"members">): void {
    for (const info of frame.members) {
      // A list of others is hearsay: it adds unknown members but does not
      // override what the member table knows.
      if (!this.#members.get(info.id)) {
        this.#declare({ ...info, state: "alive" });
      }
    }
    this.#overlay.learn(frame.members.map((info) => info.id));
  }

  /** Sends a frame on a link, with membership updates riding along. */
  #send(link: number, frame: Frame): void {
    this.#effects.send(link, this.#withUpdates(frame));
  }

  #withUpdates<T extends Frame>(frame: T): T {
    const carries = frame.type === "rumor" || frame.type === "members" ||
      frame.type === "probe" || frame.type === "probe_ack" ||
      frame.type === "shuffle";
    if (!carries || this.#broadcasts.size === 0) return frame;
    const limit = effectiveShareLimit(this.#settings, this.#members.liveCount);
    const updates = this.#broadcasts.take(
      Math.min(PIGGYBACK_PER_FRAME, MAX_PIGGYBACK),
      limit,
    );
    return updates.length === 0 ? frame : { ...frame, updates };
  }

  /** Sends a probe frame to a member: on its link, or over HTTP. */
  #sendTo(member: Member, frame: ProbeFrame): boolean {
    const link = this.#overlay.linkTo(member.id);
    if (link) {
      this.#send(link.id, frame as Frame);
      return true;
    }
    if (!member.url) return false;
    this.#effects.datagram(member.url, this.#withUpdates(frame as Frame));
    return true;
  }

  /**
   * Cleans up after a link that is gone: its sessions and an event. With
   * `treeCut`, a closed eager link may have cut the tree in two, so the
   * node grafts its other links (see dissemination.ts).
   */
  #linkGone(link: Link, treeCut = true): void {
    this.#dissemination.linkGone(link.peer, treeCut);
    this.#antiEntropy.linkClosed(link.id);
    this.#effects.emit({ type: "link_down", peer: link.peer });
  }

  /** Forgets tombstones older than the tombstone lifetime. */
  #collectTombstones(now: number): void {
    // A stale node may hold the only tombstone of a key that another stale
    // node still holds alive; it keeps them until it is fresh again.
    if (this.#antiEntropy.isStale(now)) return;
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
