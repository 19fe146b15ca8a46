/**
 * How rumors travel: which links a node pushes an update on, and how it
 * keeps the tree of eager links whole.
 *
 * With `tree` dissemination (the default, after Plumtree: Leitão, Pereira
 * and Rodrigues, SRDS 2007) a new update goes at once to every eager link.
 * A link that brings a duplicate is pruned to lazy on both ends, so the
 * eager links become a spanning tree and an update costs about one frame
 * per instance. Lazy links receive periodic announcements of recent updates
 * and graft back when they lack one, which repairs a cut tree. `random`
 * pushes to `fanout` random links per round as in Demers et al., and
 * `flood` pushes to every link.
 *
 * @module
 */

import { compareVersions, type Version } from "./clock.ts";
import type { Counters } from "./counters.ts";
import type { Entry } from "./entry.ts";
import type { Frame, FrameOf } from "./messages.ts";
import type { NodeSettings } from "./node_types.ts";
import type { Overlay } from "./overlay.ts";
import type { Replica } from "./replica.ts";
import { type RemovalReason, type RumorBuffer, shuffle } from "./rumors.ts";
import { entrySize } from "./sync.ts";

/**
 * Rounds without new updates in which lazy announcements go on, each to
 * links that have not heard of the recent updates. They cost up to this many
 * more `ihave` frames per instance after the last update of a burst, and
 * give an instance that the tree missed this many more chances to hear of it
 * before anti-entropy.
 */
const QUIET_ROUNDS = 2;

/** Lazy links grafted back when an eager link closes. */
const REGRAFT_LINKS = 2;

/** Services dissemination takes from its node. */
export interface DisseminationHost {
  readonly settings: NodeSettings;
  readonly counters: Counters;
  readonly overlay: Overlay;
  readonly rumors: RumorBuffer;
  readonly replica: Replica;
  random(): number;
  send(link: number, frame: Frame): void;
  /** Records that a rumor left the buffer. */
  rumorRemoved(key: string, reason: RemovalReason): void;
}

/**
 * Rumor pushes and the eager/lazy state of each link.
 *
 * @example
 * ```ts ignore
 * const dissemination = new Dissemination(host);
 * dissemination.spread(new Set(["features.checkout"]));
 * ```
 */
export class Dissemination {
  readonly #host: DisseminationHost;
  readonly #settings: NodeSettings;
  /** Peers whose link was pruned to lazy (tree dissemination). */
  readonly #lazy = new Set<string>();
  /**
   * Recent updates applied here, oldest first, numbered in order; at most
   * `maxEntriesPerFrame` of them, because an announcement carries no more.
   */
  readonly #recent: { seq: number; key: string; version: Version }[] = [];
  #seq = 0;
  /** Number of the newest update in the last announcement round. */
  #roundSeq = 0;
  /** Numbers of the newest update at the start of the last few rounds. */
  readonly #roundStarts: number[] = [];
  /** Rounds in a row without a new update. */
  #quietRounds = 0;
  /** Number of the newest update announced to each lazy peer. */
  readonly #announced = new Map<string, number>();
  #nextLazyPushMs = 0;
  /** Announced updates this node lacks, with the link that announced them. */
  readonly #wanted = new Map<
    string,
    { version: Version; peer: string; link: number }
  >();

  constructor(host: DisseminationHost) {
    this.#host = host;
    this.#settings = host.settings;
  }

  /** Records an update applied here, for the next lazy announcement. */
  noteApplied(entry: Entry): void {
    this.#recent.push({
      seq: ++this.#seq,
      key: entry.key,
      version: entry.version,
    });
    if (this.#recent.length > this.#settings.maxEntriesPerFrame) {
      this.#recent.shift();
    }
  }

  /**
   * Forgets a closed link. With `treeCut`, a closed eager link may have cut
   * the tree in two, so the node grafts its other links.
   */
  linkGone(peer: string, treeCut: boolean): void {
    const wasEager = !this.#lazy.has(peer);
    this.#lazy.delete(peer);
    this.#announced.delete(peer);
    if (treeCut && wasEager) this.#regraft();
  }

  /**
   * Pushes infective rumors, or only those of `keys`. With `random`
   * dissemination each goes to `fanout` random links per round; with
   * `tree` to every eager link at once; with `flood` to every link at once.
   */
  spread(keys?: ReadonlySet<string>): void {
    if (keys?.size === 0 || this.#host.rumors.size === 0) return;
    const links = this.#host.overlay.links;
    const mode = this.#settings.dissemination;
    let peers = [...links.keys()];
    if (mode === "tree") peers = peers.filter((peer) => !this.#lazy.has(peer));
    const fanout = mode === "random" ? this.#settings.fanout : peers.length;
    const { pushes, removed } = this.#host.rumors.plan(
      peers,
      Math.max(1, fanout),
      this.#settings.maxEntriesPerFrame,
      this.#host.random,
      keys,
    );
    for (const [peer, rumors] of pushes) {
      const link = links.get(peer);
      if (!link) continue;
      const entries: Entry[] = [];
      for (const rumor of rumors) {
        const entry = this.#host.replica.get(rumor.key);
        if (entry && compareVersions(entry.version, rumor.version) === 0) {
          entries.push(entry);
        }
      }
      this.#host.counters.inc("rumor_shares", {}, entries.length);
      this.sendEntries(link.id, entries);
    }
    for (const [key, reason] of removed) this.#host.rumorRemoved(key, reason);
  }

  // ---- Tree dissemination ------------------------------------------------------------

  /**
   * Marks a link lazy after it brought a duplicate. Plumtree (Leitão,
   * Pereira and Rodrigues, SRDS 2007) prunes such links until the eager
   * links form a spanning tree, so each update costs about one frame per
   * instance. The feedback frame sent with the duplicate tells the peer to
   * prune its end as well.
   */
  prune(peer: string): void {
    if (this.#settings.dissemination !== "tree" || this.#lazy.has(peer)) return;
    this.#lazy.add(peer);
    // Until now the link was eager and carried every update.
    this.#announced.set(peer, this.#seq);
    this.#host.counters.inc("links_pruned");
  }

  /** Returns whether tree dissemination pushes updates on the link to `peer`. */
  isEager(peer: string): boolean {
    return this.#settings.dissemination === "tree" && !this.#lazy.has(peer);
  }

  /**
   * Makes a link eager again on this end after it brought an update this node
   * lacked, as Plumtree does. The peer pushed on it, so its end is eager. A
   * link that is eager on one end only carries updates in one direction, and
   * it arises when a graft crosses a feedback frame that prunes the link.
   */
  delivered(peer: string): void {
    if (this.#settings.dissemination !== "tree") return;
    this.#lazy.delete(peer);
    this.#announced.delete(peer);
  }

  /**
   * Every `lazyPushIntervalMs` in which updates were applied here, and in the
   * {@link QUIET_ROUNDS} rounds after the last such one, announces them to
   * `lazyPushFanout` random lazy links that have not heard of them. A peer
   * that lacks one pulls it with a graft, which makes the link eager again:
   * that repairs a tree cut in two by concurrent prunes or closed links.
   *
   * Each peer is sent every recent update since the last announcement to it,
   * not only those of this round. A peer cut off from the tree is not picked
   * every round. With the updates of one round only, it would lack those of
   * the rounds it was skipped until anti-entropy found them, and without the
   * quiet rounds, so would a peer that missed the last update of a burst.
   */
  lazyPush(now: number): void {
    if (this.#settings.dissemination !== "tree") return;
    this.#graftWanted();
    if (now < this.#nextLazyPushMs) return;
    this.#nextLazyPushMs = now + this.#settings.lazyPushIntervalMs;
    const quiet = this.#seq === this.#roundSeq;
    this.#quietRounds = quiet ? this.#quietRounds + 1 : 0;
    if (this.#quietRounds > QUIET_ROUNDS) return;
    // A peer never announced to hears of the updates of the last few rounds.
    this.#roundStarts.push(this.#roundSeq);
    if (this.#roundStarts.length > QUIET_ROUNDS + 1) this.#roundStarts.shift();
    const oldest = this.#roundStarts[0]!;
    this.#roundSeq = this.#seq;
    const since = (peer: string) => this.#announced.get(peer) ?? oldest;
    // A link pruned after the last update carried every update eagerly.
    const lazy = [...this.#lazy].filter((peer) =>
      this.#host.overlay.linkTo(peer) && since(peer) < this.#seq
    );
    for (const peer of this.#announceTargets(lazy)) {
      this.#announce(this.#host.overlay.linkTo(peer)!.id, since(peer));
      this.#announced.set(peer, this.#seq);
    }
  }

  /** Sends an `ihave` of the recent updates numbered above `since`, if any. */
  #announce(link: number, since: number): void {
    // Later versions of a key replace earlier ones in the map.
    const items = new Map<string, Version>();
    for (const update of this.#recent) {
      if (update.seq > since) items.set(update.key, update.version);
    }
    if (items.size === 0) return;
    this.#host.send(link, { v: 1, type: "ihave", items: [...items] });
  }

  /**
   * Picks up to `lazyPushFanout` lazy links for an announcement. With region
   * awareness, they are links in this node's region, because each region
   * repairs its own part of the tree. One link to another region is added
   * with a chance of 2 / (members in the region) per round. So about two
   * instances per region announce across each round, and a region cut off
   * from the tree hears of what it missed within a round or two.
   */
  #announceTargets(lazy: string[]): string[] {
    const shuffled = shuffle(lazy, this.#host.random);
    const fanout = this.#settings.lazyPushFanout;
    if (this.#settings.regionAwareness === "off") {
      return shuffled.slice(0, fanout);
    }
    const overlay = this.#host.overlay;
    const chosen = shuffled.filter((peer) => overlay.sideOf(peer) === "local")
      .slice(0, fanout);
    const remote = shuffled.find((peer) => overlay.sideOf(peer) === "remote");
    const across = chosen.length < fanout ||
      this.#host.random() < 2 / overlay.regionSize();
    if (remote && across) chosen.push(remote);
    return chosen;
  }

  /**
   * Notes the announced updates this node lacks, to pull them with a graft
   * at the next round unless the tree delivers them first. Grafting at once
   * would race the eager copy, which is often a hop or two behind the
   * announcement: the graft response would then come first, and the eager
   * copy would arrive as a duplicate and prune a working link of the tree.
   * Plumtree waits with a timer for the same reason.
   */
  receiveIHave(link: number, peer: string, frame: FrameOf<"ihave">): void {
    for (const [key, version] of frame.items) {
      if (!this.#lacks(key, version)) continue;
      const pending = this.#wanted.get(key);
      if (pending && compareVersions(pending.version, version) >= 0) continue;
      // A bound against peers that announce floods of keys; anti-entropy
      // finds whatever is left out.
      if (!pending && this.#wanted.size >= this.#settings.maxEntriesPerFrame) {
        continue;
      }
      this.#wanted.set(key, { version, peer, link });
    }
  }

  /** Sends one graft per peer for the announced updates still missing. */
  #graftWanted(): void {
    const byLink = new Map<number, { peer: string; keys: string[] }>();
    for (const [key, { version, peer, link }] of this.#wanted) {
      if (!this.#lacks(key, version)) continue;
      if (this.#host.overlay.linkTo(peer)?.id !== link) continue;
      const graft = byLink.get(link) ?? { peer, keys: [] };
      graft.keys.push(key);
      byLink.set(link, graft);
    }
    this.#wanted.clear();
    for (const [link, { peer, keys }] of byLink) {
      this.#lazy.delete(peer);
      this.#host.counters.inc("grafts_sent");
      this.#host.send(link, { v: 1, type: "graft", keys });
    }
  }

  #lacks(key: string, version: Version): boolean {
    const current = this.#host.replica.get(key);
    return !current || compareVersions(version, current.version) > 0;
  }

  /**
   * Sends the entries a graft requests and makes the link eager. A graft
   * without keys comes from a peer whose eager link closed: the updates in
   * flight on that link are lost, so the peer gets an announcement of those
   * not yet announced to it and pulls what it lacks.
   */
  receiveGraft(link: number, peer: string, frame: FrameOf<"graft">): void {
    // Only tree dissemination marks links lazy.
    const wasLazy = this.#lazy.delete(peer);
    if (wasLazy && frame.keys.length === 0) {
      this.#announce(link, this.#announced.get(peer) ?? this.#roundSeq);
    }
    this.#announced.delete(peer);
    const entries = frame.keys
      .map((key) => this.#host.replica.get(key))
      .filter((entry): entry is Entry => entry !== undefined);
    if (entries.length > 0) this.sendEntries(link, entries);
  }

  /**
   * Makes up to {@link REGRAFT_LINKS} random lazy links of this node eager
   * again, on both ends. A closed eager link splits the tree, and without
   * this the far part would get new updates only through the next lazy
   * announcement and graft, which takes up to `lazyPushIntervalMs`. A few
   * links are enough to bridge the cut in most cases; grafting every link
   * would make each link closure cost a burst of duplicates.
   */
  #regraft(): void {
    if (this.#settings.dissemination !== "tree") return;
    const lazy = [...this.#host.overlay.links.values()].filter((link) =>
      this.#lazy.has(link.peer)
    );
    for (
      const link of shuffle(lazy, this.#host.random).slice(0, REGRAFT_LINKS)
    ) {
      this.#lazy.delete(link.peer);
      this.#host.counters.inc("links_regrafted");
      this.#host.send(link.id, { v: 1, type: "graft", keys: [] });
    }
  }

  /**
   * Keeps at least one eager link: a node whose eager links all closed
   * grafts every remaining link, and the next duplicates prune it again.
   */
  keepEager(): void {
    if (this.#settings.dissemination !== "tree") return;
    const links = [...this.#host.overlay.links.values()];
    if (
      links.length === 0 || links.some((link) => !this.#lazy.has(link.peer))
    ) {
      return;
    }
    for (const link of links) {
      this.#lazy.delete(link.peer);
      this.#host.send(link.id, { v: 1, type: "graft", keys: [] });
    }
  }

  /** Sends entries as rumor frames, split to fit the frame limits. */
  sendEntries(link: number, entries: readonly Entry[]): void {
    const budget = this.#settings.maxFrameBytes / 2;
    let batch: Entry[] = [];
    let bytes = 0;
    for (const entry of entries) {
      const size = entrySize(entry);
      const full = batch.length >= this.#settings.maxEntriesPerFrame ||
        (batch.length > 0 && bytes + size > budget);
      if (full) {
        this.#host.send(link, { v: 1, type: "rumor", entries: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(entry);
      bytes += size;
    }
    if (batch.length > 0) {
      this.#host.send(link, { v: 1, type: "rumor", entries: batch });
    }
  }
}
