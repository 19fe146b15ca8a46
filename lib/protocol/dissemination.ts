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
  /** Updates applied since the last lazy announcement, by key. */
  readonly #recent = new Map<string, Version>();
  #nextLazyPushMs = 0;

  constructor(host: DisseminationHost) {
    this.#host = host;
    this.#settings = host.settings;
  }

  /** Records an update applied here, for the next lazy announcement. */
  noteApplied(entry: Entry): void {
    this.#recent.set(entry.key, entry.version);
  }

  /**
   * Forgets a closed link. With `treeCut`, a closed eager link may have cut
   * the tree in two, so the node grafts its other links.
   */
  linkGone(peer: string, treeCut: boolean): void {
    const wasEager = !this.#lazy.has(peer);
    this.#lazy.delete(peer);
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
    this.#host.counters.inc("links_pruned");
  }

  /**
   * Every `lazyPushIntervalMs`, announces the updates applied since the last
   * announcement to `lazyPushFanout` random lazy links. A peer that lacks one pulls
   * it with a graft, which makes the link eager again: that repairs a tree
   * cut in two by concurrent prunes or closed links.
   */
  lazyPush(now: number): void {
    if (this.#settings.dissemination !== "tree") return;
    if (now < this.#nextLazyPushMs) return;
    this.#nextLazyPushMs = now + this.#settings.lazyPushIntervalMs;
    if (this.#recent.size === 0) return;
    const items: [string, Version][] = [...this.#recent].slice(
      -this.#settings.maxEntriesPerFrame,
    );
    this.#recent.clear();
    const lazy = [...this.#lazy].filter((peer) =>
      this.#host.overlay.linkTo(peer)
    );
    for (const peer of this.#announceTargets(lazy)) {
      this.#host.send(this.#host.overlay.linkTo(peer)!.id, {
        v: 1,
        type: "ihave",
        items,
      });
    }
  }

  /**
   * Picks up to `lazyPushFanout` lazy links for an announcement: with region
   * awareness, links in this node's region first and at most one link to
   * another region, because each region repairs its own part of the tree.
   */
  #announceTargets(lazy: string[]): string[] {
    const shuffled = shuffle(lazy, this.#host.random);
    const fanout = this.#settings.lazyPushFanout;
    if (this.#settings.regionAwareness === "off") {
      return shuffled.slice(0, fanout);
    }
    const side = (peer: string) => this.#host.overlay.sideOf(peer);
    const chosen = shuffled.filter((peer) => side(peer) === "local")
      .slice(0, fanout);
    const remote = shuffled.find((peer) => side(peer) === "remote");
    if (chosen.length < fanout && remote) chosen.push(remote);
    return chosen;
  }

  receiveIHave(link: number, peer: string, frame: FrameOf<"ihave">): void {
    const wanted = frame.items
      .filter(([key, version]) => {
        const current = this.#host.replica.get(key);
        return !current || compareVersions(version, current.version) > 0;
      })
      .map(([key]) => key);
    if (wanted.length === 0) return;
    this.#lazy.delete(peer);
    this.#host.counters.inc("grafts_sent");
    this.#host.send(link, { v: 1, type: "graft", keys: wanted });
  }

  receiveGraft(link: number, peer: string, frame: FrameOf<"graft">): void {
    this.#lazy.delete(peer);
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
