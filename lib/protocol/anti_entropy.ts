/**
 * Anti-entropy scheduling for one node: which peer to compare with and
 * when, the sessions this node opened, answers to other nodes' sessions, the
 * spreading of what a session repaired, and the quarantine of an instance
 * that was away longer than the tombstone lifetime (see quarantine.ts).
 *
 * The tree walk itself is in sync.ts; this module decides when it runs and
 * what its results cause.
 *
 * @module
 */

import { compareVersions } from "./clock.ts";
import type { Counters } from "./counters.ts";
import type { Entry } from "./entry.ts";
import type { MemberTable } from "./membership.ts";
import type { Frame, SyncRequest, SyncResponse } from "./messages.ts";
import {
  type ChangeSource,
  type HttpSyncDriver,
  newRumorOp,
  type NodeEvent,
  type NodeSettings,
  type PersistOp,
} from "./node_types.ts";
import type { Overlay } from "./overlay.ts";
import { isStale, Quarantine } from "./quarantine.ts";
import type { Replica } from "./replica.ts";
import type { RumorBuffer } from "./rumors.ts";
import {
  answerSync,
  type SyncLimits,
  SyncSession,
  type SyncStats,
} from "./sync.ts";
import { SyncTargets } from "./sync_targets.ts";

/** Result of merging one remote entry. */
export type MergeResult = "applied" | "duplicate" | "stale" | "rejected";

/** Services anti-entropy takes from its node. */
export interface AntiEntropyHost {
  readonly settings: NodeSettings;
  readonly counters: Counters;
  readonly replica: Replica;
  readonly members: MemberTable;
  readonly overlay: Overlay;
  readonly rumors: RumorBuffer;
  now(): number;
  random(): number;
  /** Merges a remote entry with the node's checks. */
  merge(
    entry: Entry,
    source: Exclude<ChangeSource, "local">,
    from: string,
  ): MergeResult;
  /** Pushes the rumors of `keys` at once. */
  spread(keys: ReadonlySet<string>): void;
  send(link: number, frame: Frame): void;
  syncOverHttp(url: string): void;
  emit(event: NodeEvent): void;
  /** Queues a KV operation. */
  persist(op: PersistOp): void;
  /** Commits queued KV operations. */
  flush(): void;
}

interface OpenSession {
  readonly session: SyncSession;
  readonly peer: string;
  readonly link: number | undefined;
  readonly startedMs: number;
  readonly repair: RepairState;
}

/** State of one initiated anti-entropy session, beyond its stats. */
interface RepairState {
  /** Order in which the session was opened, from 1. */
  readonly serial: number;
  /** False once a response stated that the peer does not vouch for its state. */
  vouched: boolean;
  /** Repaired entries spread as rumors so far. */
  rumored: number;
}

/**
 * Anti-entropy of one node.
 *
 * @example
 * ```ts ignore
 * const antiEntropy = new AntiEntropy(host);
 * antiEntropy.tick(); // from the node's timer
 * ```
 */
export class AntiEntropy {
  readonly #host: AntiEntropyHost;
  readonly #settings: NodeSettings;
  readonly #sessions = new Map<number, OpenSession>();
  readonly #syncTargets: SyncTargets;
  readonly #quarantine = new Quarantine();
  #syncRounds = 0;
  #lastSyncMs: number | undefined;
  #sessionSerial = 0;
  #httpSyncUrl: string | undefined;
  #nextStaleCheckMs: number;
  #nextRequestId = 1;
  #httpSyncRunning = false;
  #nextSyncMs: number;

  constructor(host: AntiEntropyHost) {
    this.#host = host;
    this.#settings = host.settings;
    this.#syncTargets = new SyncTargets(host.settings, host.random);
    const start = host.now();
    this.#nextSyncMs = start + this.#syncDelay();
    this.#nextStaleCheckMs = start;
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

  /** Sets the last sync time loaded from the store. */
  restore(lastSyncMs: number | undefined): void {
    this.#lastSyncMs = lastSyncMs;
  }

  /** Whether this node was away longer than the tombstone lifetime. */
  isStale(now: number): boolean {
    return isStale(this.#lastSyncMs, now, this.#settings.tombstoneTtlMs);
  }

  /** Returns the quarantined entry of a key, if any. */
  quarantinedEntry(key: string): Entry | undefined {
    return this.#quarantine.get(key);
  }

  /** Releases a key from quarantine: a local write replaced it. */
  release(key: string): void {
    this.#quarantine.take(key);
  }

  /**
   * Runs the periodic work: the staleness check, a new session when one is
   * due, and session timeouts.
   */
  tick(now: number): void {
    if (now >= this.#nextStaleCheckMs) {
      this.#nextStaleCheckMs = now +
        collectIntervalMs(this.#settings.tombstoneTtlMs);
      this.#quarantineIfStale(now);
    }
    if (now >= this.#nextSyncMs) {
      this.#nextSyncMs = now + this.#syncDelay();
      this.#start();
    }
    this.#expire(now);
  }

  /** Ends the sessions that ran on a link that closed. */
  linkClosed(link: number): void {
    for (const [rid, open] of this.#sessions) {
      if (open.link === link) {
        this.#sessions.delete(rid);
        this.#finishSync(open.peer, "ws", open.session.stats, "link closed");
      }
    }
  }

  /**
   * Answers one anti-entropy request: merges the entries it pushes, then
   * compares tree nodes and returns wanted entries. Used for WebSocket and
   * HTTP requests alike.
   */
  handleSyncRequest(request: SyncRequest, from: string): SyncResponse {
    const repaired: Entry[] = [];
    for (const entry of request.push) {
      if (this.#host.merge(entry, "push", from) === "applied") {
        repaired.push(entry);
      }
    }
    this.#spreadRepaired(
      repaired.slice(0, this.#settings.antiEntropyRumorLimit),
      from,
    );
    const response = answerSync(
      this.#host.replica,
      request,
      this.#syncLimits(),
    );
    this.#host.counters.inc("sync_requests_answered");
    this.#host.flush();
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
    const session = new SyncSession(this.#host.replica, this.#syncLimits());
    const repair = this.#newRepairState();
    return {
      first: () => session.first(),
      next: (response) => {
        const request = this.#nextSyncStep(session, repair, peer, response);
        this.#host.flush();
        return request;
      },
      finish: (error) => {
        this.#httpSyncRunning = false;
        if (url !== undefined) {
          if (error === undefined) this.#syncTargets.succeeded(url);
          else this.#syncTargets.failed(url, this.#host.now());
        }
        this.#finishSync(peer, "http", session.stats, error, repair);
        this.#host.flush();
      },
    };
  }

  /**
   * URLs for anti-entropy over HTTP: live members that are not linked, and
   * seeds that are no known member's URL.
   */
  #syncUrls(): string[] {
    const urls = new Set<string>();
    const known = new Set<string>();
    for (const member of this.#host.members.others()) {
      if (!member.url) continue;
      known.add(member.url);
      const linked = this.#host.overlay.linkTo(member.id) !== undefined;
      if (member.state === "alive" && !linked) urls.add(member.url);
    }
    for (const seed of this.#settings.seeds) {
      if (!known.has(seed)) urls.add(seed);
    }
    if (this.#host.members.self.url) urls.delete(this.#host.members.self.url);
    return [...urls];
  }

  #syncDelay(): number {
    const { antiEntropyIntervalMs, antiEntropyJitter } = this.#settings;
    const spread = antiEntropyIntervalMs * antiEntropyJitter;
    return antiEntropyIntervalMs - spread + this.#host.random() * 2 * spread;
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
   * sync_targets.ts): over its link when linked, over HTTP otherwise. With
   * region awareness, peers come from this node's region, except every
   * `remoteSyncEvery`-th round, which pairs with another region so that
   * regions cannot drift apart.
   */
  #start(): void {
    let wsBusy = false;
    for (const open of this.#sessions.values()) {
      if (open.link !== undefined) wsBusy = true;
    }
    let linked = wsBusy ? [] : [...this.#host.overlay.links.keys()];
    let urls = this.#syncUrls();
    if (this.#settings.regionAwareness === "on") {
      this.#syncRounds++;
      const remote = this.#syncRounds % this.#settings.remoteSyncEvery === 0;
      const region = this.#host.members.self.region;
      const byRegion = new Map(
        this.#host.members.others().map((
          member,
        ) => [member.url, member.region]),
      );
      const sideLinks = linked.filter((peer) =>
        (this.#host.overlay.sideOf(peer) === "remote") === remote
      );
      const sideUrls = urls.filter((url) =>
        (byRegion.get(url) !== region) === remote
      );
      if (sideLinks.length + sideUrls.length > 0) {
        linked = sideLinks;
        urls = sideUrls;
      }
    }
    const target = this.#syncTargets.choose({
      linked,
      urls,
      httpBusy: this.#httpSyncRunning,
    }, this.#host.now());
    if (!target) return;
    if (target.via === "http") {
      this.#httpSyncUrl = target.url;
      this.#host.syncOverHttp(target.url);
      return;
    }
    const link = this.#host.overlay.linkTo(target.peer)!;
    const session = new SyncSession(this.#host.replica, this.#syncLimits());
    const rid = this.#nextRequestId++;
    this.#sessions.set(rid, {
      session,
      peer: link.peer,
      link: link.id,
      startedMs: this.#host.now(),
      repair: this.#newRepairState(),
    });
    this.#host.send(link.id, {
      v: 1,
      type: "sync_request",
      rid,
      body: session.first(),
    });
  }

  /** Takes a response to a session this node opened over a link. */
  continueSync(rid: number, response: SyncResponse): void {
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
    this.#host.send(open.link, {
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
    this.#host.counters.inc("sync_sessions", {
      via,
      result: ok ? "ok" : "failed",
    });
    if (ok && repair?.vouched) {
      this.#lastSyncMs = this.#host.now();
      if (this.#quarantine.endsWith(repair.serial)) this.#endQuarantine();
    }
    this.#host.emit({ type: "sync_done", peer, via, ok, stats, error });
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
      const result = this.#host.merge(entry, "pull", peer);
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
      this.#host.rumors.add(entry.key, entry.version, [from]);
      this.#host.persist(newRumorOp(entry));
    }
    this.#host.counters.inc("repairs_rumored", {}, entries.length);
    if (this.#settings.rumorFirstPush === "at_once") this.#host.spread(keys);
  }

  /** Whether this node's sync answers can end a peer's quarantine. */
  #vouches(): boolean {
    const now = this.#host.now();
    return this.#quarantine.size === 0 &&
      !isStale(this.#lastSyncMs, now, this.#settings.tombstoneTtlMs) &&
      (this.#lastSyncMs !== undefined || this.#host.replica.size > 0);
  }

  /**
   * Quarantines entries older than the tombstone horizon while this node
   * is stale; see quarantine.ts for the rule.
   */
  #quarantineIfStale(now: number): void {
    const ttl = this.#settings.tombstoneTtlMs;
    if (!isStale(this.#lastSyncMs, now, ttl)) return;
    const moved = this.#quarantine.enter(
      this.#host.replica,
      now - ttl,
      this.#sessionSerial,
    );
    if (moved === 0) return;
    this.#host.counters.inc("entries_quarantined", {}, moved);
    this.#host.emit({
      type: "quarantine",
      phase: "entered",
      entries: moved,
    });
    // Settle the quarantine at the next tick instead of one interval later.
    this.#nextSyncMs = now;
  }

  /** Settles a quarantined key with a copy of it that a peer sent. */
  settle(copy: Entry, held: Entry, from: string): void {
    this.#quarantine.take(held.key);
    const order = compareVersions(copy.version, held.version);
    if (order > 0) {
      // The copy replaces it; the merge that follows stores the copy.
      this.#host.persist({ type: "forget", key: held.key });
      this.#host.counters.inc("quarantine_settled", { outcome: "replaced" });
      return;
    }
    // The peer holds the key, so the fleet did not forget it.
    this.#host.replica.apply(held);
    this.#host.counters.inc("quarantine_settled", { outcome: "kept" });
    if (order < 0) this.#spreadRepaired([held], from);
  }

  /** Drops every entry still quarantined: no vouching peer held them. */
  #endQuarantine(): void {
    const dropped = this.#quarantine.drain();
    for (const entry of dropped) {
      this.#host.persist({ type: "forget", key: entry.key });
    }
    this.#host.counters.inc(
      "quarantine_settled",
      { outcome: "dropped" },
      dropped.length,
    );
    this.#host.emit({
      type: "quarantine",
      phase: "ended",
      entries: dropped.length,
    });
  }

  #expire(now: number): void {
    for (const [rid, open] of this.#sessions) {
      if (now - open.startedMs > this.#settings.syncTimeoutMs) {
        this.#sessions.delete(rid);
        this.#finishSync(open.peer, "ws", open.session.stats, "timed out");
      }
    }
  }
}

/**
 * Returns how often tombstones are collected and staleness checked: a
 * quarter of the tombstone lifetime, between 1 s and 60 s.
 */
export function collectIntervalMs(tombstoneTtlMs: number): number {
  return Math.max(1000, Math.min(tombstoneTtlMs / 4, 60_000));
}
