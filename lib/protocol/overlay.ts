/**
 * Random peer sampling: which instances a node keeps WebSocket links to.
 *
 * Following HyParView (Leitão, Pereira and Rodrigues, DSN 2007), each node
 * keeps a small active view, its open links, and a larger passive view, a
 * random sample of other members to replace failed links from.
 *
 * - The active view aims at `activeViewSize` links; 0 picks
 *   `ceil(ln N) + 2` (4 links at 5 instances, 5 at 20, 9 at 1,000).
 *   Inbound links are accepted up to `maxLinks`, but a node that passes its
 *   target by more than two drops one of the links it dialled, so links do
 *   not pile up on the best-known nodes.
 * - When a link fails, the node dials a random passive member at once.
 * - Every `shuffleIntervalMs` the node swaps a random sample of its views
 *   with one random linked peer, which answers with a sample of its own, so
 *   passive views stay fresh and random. It also dials one random passive
 *   member and, once that link opens, closes a random other link it had
 *   dialled, so the overlay keeps changing and no group of nodes stays
 *   linked only among itself.
 * - Two links between the same pair (both dialled at once) collapse to the
 *   one the lower id dialled, on both sides.
 * - With region awareness on, `crossRegionLinks` of the links go to other
 *   regions and the rest stay in the node's own region, so an update crosses
 *   between regions on a few links instead of on most of them. Replacements
 *   and trims keep that split.
 *
 * @module
 */

import type { Counters } from "./counters.ts";
import { DialPlanner } from "./dial_planner.ts";
import { type Member, MemberTable } from "./membership.ts";
import type { CloseReason, Frame, FrameOf, MemberInfo } from "./messages.ts";
import { shuffle } from "./rumors.ts";

/** Settings of the overlay. */
export interface OverlaySettings {
  readonly activeViewSize: number;
  readonly regionAwareness: "on" | "off";
  readonly crossRegionLinks: number;
  readonly passiveViewSize: number;
  readonly maxLinks: number;
  readonly shuffleIntervalMs: number;
  readonly redialMinMs: number;
  readonly redialMaxMs: number;
  readonly seeds: readonly string[];
}

/** Services the overlay takes from its node. */
export interface OverlayHost {
  readonly members: MemberTable;
  readonly counters: Counters;
  now(): number;
  random(): number;
  dial(url: string): void;
  send(link: number, frame: Frame): void;
  closeLink(link: number, reason: CloseReason): void;
  /**
   * Returns whether updates spread eagerly on the link to `peer`. The overlay
   * closes such a link only when it has no other choice, because closing it
   * cuts the tree of eager links.
   */
  carriesTree?(peer: string): boolean;
}

/** An open link in the active view. */
export interface Link {
  readonly id: number;
  readonly peer: string;
  readonly outbound: boolean;
  readonly openedMs: number;
}

/** Whether a peer is in this node's region. */
export type Side = "local" | "remote";

/** Outcome of {@link Overlay.opened}. */
export type LinkDecision = "accepted" | "duplicate" | "full" | "self";

/** Links above the target a node accepts before it drops a dialled one. */
const TRIM_SLACK = 2;

/** Members sent in one shuffle. */
const SHUFFLE_SAMPLE = 8;

/**
 * Active and passive views of one node.
 *
 * @example
 * ```ts ignore
 * const overlay = new Overlay(settings, host);
 * overlay.tick(); // dials what the active view lacks
 * ```
 */
export class Overlay {
  readonly #settings: OverlaySettings;
  readonly #host: OverlayHost;
  readonly #planner: DialPlanner;
  readonly #links = new Map<string, Link>();
  readonly #linkPeers = new Map<number, string>();
  readonly #passive = new Set<string>();
  readonly #selfUrls = new Set<string>();
  #nextShuffleMs: number;
  /** Side of the link a shuffle is replacing, while its new link opens. */
  #replacing: Side | undefined;

  constructor(settings: OverlaySettings, host: OverlayHost) {
    this.#settings = settings;
    this.#host = host;
    this.#planner = new DialPlanner(settings, host.random);
    const selfUrl = host.members.self.url;
    if (selfUrl) this.#selfUrls.add(selfUrl);
    this.#nextShuffleMs = host.now() + settings.shuffleIntervalMs;
  }

  /** Links the node aims to keep. */
  targetSize(): number {
    if (this.#settings.activeViewSize > 0) return this.#settings.activeViewSize;
    const fleet = Math.max(2, this.#host.members.liveCount);
    return Math.min(this.#settings.maxLinks, Math.ceil(Math.log(fleet)) + 2);
  }

  /** Open links, by peer id. */
  get links(): ReadonlyMap<string, Link> {
    return this.#links;
  }

  /** Ids in the passive view. */
  get passive(): ReadonlySet<string> {
    return this.#passive;
  }

  /** Peer id of a link. */
  peerOf(link: number): string | undefined {
    return this.#linkPeers.get(link);
  }

  /** Link to a peer, if there is one. */
  linkTo(peer: string): Link | undefined {
    return this.#links.get(peer);
  }

  /** Adds members to the passive view, evicting random ones when full. */
  learn(ids: Iterable<string>): void {
    for (const id of ids) {
      if (id === this.#host.members.self.id || this.#links.has(id)) continue;
      if (this.#passive.has(id)) continue;
      if (this.#passive.size >= this.#settings.passiveViewSize) {
        const victims = [...this.#passive];
        this.#passive.delete(
          victims[Math.floor(this.#host.random() * victims.length)]!,
        );
      }
      this.#passive.add(id);
    }
  }

  /** Forgets a member that died or left. */
  forget(id: string): void {
    this.#passive.delete(id);
  }

  /**
   * Registers a link whose peer sent its hello, or decides to close it.
   * Returns the link it replaced, if any, so the node can clean up after it.
   */
  opened(
    link: number,
    peer: MemberInfo,
    outbound: boolean,
    dialedUrl?: string,
  ): { decision: LinkDecision; replaced?: Link } {
    if (dialedUrl) this.#planner.succeeded(dialedUrl);
    if (peer.id === this.#host.members.self.id) {
      if (dialedUrl) this.#selfUrls.add(dialedUrl);
      return { decision: "self" };
    }
    const existing = this.#links.get(peer.id);
    if (existing && !this.#prefersNewLink(existing, outbound, peer.id)) {
      return { decision: "duplicate" };
    }
    const full = this.#links.size >= this.#settings.maxLinks;
    if (!existing && !outbound && full) return { decision: "full" };

    if (existing) this.#remove(existing);
    const entry = {
      id: link,
      peer: peer.id,
      outbound,
      openedMs: this.#host.now(),
    };
    this.#links.set(peer.id, entry);
    this.#linkPeers.set(link, peer.id);
    this.#passive.delete(peer.id);
    this.#host.counters.inc("links_opened", {
      direction: outbound ? "out" : "in",
    });

    const side = this.sideOf(peer.id);
    const replacing = this.#replacing;
    if (
      replacing && outbound && side === replacing &&
      this.#links.size > this.targetSize()
    ) {
      this.#replacing = undefined;
      this.#dropRandomOutbound(peer.id, side);
    } else if (!outbound && side === "remote" && this.#remoteOverQuota()) {
      // Links others dial in count toward the cross-region share too; drop
      // a cross-region link this node dialled, so that an update crosses
      // between regions on a few links only.
      this.#dropRandomOutbound(peer.id, "remote", true);
    } else if (!outbound && this.#links.size > this.targetSize() + TRIM_SLACK) {
      // Accepting links beyond the target would pile links onto popular
      // nodes. As in HyParView, the node makes room by dropping a dialled
      // link, and that link's peer then dials someone less busy.
      this.#dropRandomOutbound(peer.id, side);
    }
    return { decision: "accepted", replaced: existing };
  }

  /** Removes a closed link; returns it if it was the peer's current link. */
  closed(link: number): Link | undefined {
    const peer = this.#linkPeers.get(link);
    if (peer === undefined) return undefined;
    this.#linkPeers.delete(link);
    const current = this.#links.get(peer);
    if (current?.id !== link) return undefined;
    this.#links.delete(peer);
    // A lost neighbour goes back to the passive view while it is alive.
    this.learn([peer]);
    return current;
  }

  /** Closes the link to a peer that is dead or gone. */
  drop(peer: string, reason: CloseReason): Link | undefined {
    const link = this.#links.get(peer);
    this.#passive.delete(peer);
    if (!link) return undefined;
    this.#remove(link);
    this.#host.closeLink(link.id, reason);
    return link;
  }

  /** Records a dial that failed before the peer's hello arrived. */
  dialFailed(url: string): void {
    this.#planner.failed(url, this.#host.now());
  }

  /** Dials what the active view lacks, and shuffles when it is time. */
  tick(): void {
    const now = this.#host.now();
    const missing = this.targetSize() - this.#links.size -
      this.#planner.dialing;
    if (missing > 0) {
      for (const url of this.#chooseDials(missing, now)) this.#host.dial(url);
    }
    if (now >= this.#nextShuffleMs) {
      this.#nextShuffleMs = now + this.#settings.shuffleIntervalMs;
      this.#shuffle(now);
    }
  }

  /** Handles a shuffle: merges the sample, and replies to a request with a sample of its own. */
  onShuffle(link: number, frame: FrameOf<"shuffle">): void {
    const members = this.#host.members;
    const now = this.#host.now();
    for (const info of frame.sample) {
      members.apply({ ...info, state: "alive" }, now);
    }
    if (!frame.reply) {
      this.#host.send(link, {
        v: 1,
        type: "shuffle",
        sample: this.#sample(),
        reply: true,
      });
    }
    this.learn(
      frame.sample.map((info) => info.id).filter((id) => {
        const member = members.get(id);
        return member?.state === "alive" || member?.state === "suspect";
      }),
    );
  }

  /** Returns the members frame sent when a link opens. */
  membersFrame(): Frame {
    const infos = shuffle(this.#host.members.infos(), this.#host.random)
      .slice(0, 64);
    return { v: 1, type: "members", members: infos };
  }

  /** A random sample of this node and its views, for a shuffle. */
  #sample(): MemberInfo[] {
    const members = this.#host.members;
    const ids = shuffle(
      [...this.#links.keys(), ...this.#passive],
      this.#host.random,
    ).slice(0, SHUFFLE_SAMPLE - 1);
    const infos = [MemberTable.info(members.self)];
    for (const id of ids) {
      const member = members.get(id);
      if (member && (member.state === "alive" || member.state === "suspect")) {
        infos.push(MemberTable.info(member));
      }
    }
    return infos;
  }

  #shuffle(now: number): void {
    const links = [...this.#links.values()];
    if (links.length === 0) return;
    const partner = links[Math.floor(this.#host.random() * links.length)]!;
    this.#host.send(partner.id, {
      v: 1,
      type: "shuffle",
      sample: this.#sample(),
      reply: false,
    });
    this.#host.counters.inc("shuffles");
    if (this.#links.size < this.targetSize()) return;
    // Replace a link of the same side, so the local and remote shares stay.
    const quota = this.remoteQuota();
    const side: Side = this.#host.random() * this.targetSize() < quota
      ? "remote"
      : "local";
    const [url] = this.#planner.choose(this.#candidates(side), 1, now);
    if (!url) return;
    this.#replacing = side;
    this.#host.dial(url);
  }

  /** Returns whether links to other regions exceed their share by more than one. */
  #remoteOverQuota(): boolean {
    if (this.#settings.regionAwareness === "off") return false;
    let remote = 0;
    for (const link of this.#links.values()) {
      if (this.sideOf(link.peer) === "remote") remote++;
    }
    return remote > this.remoteQuota() + 1;
  }

  /** Returns whether a member is in this node's region or another one. */
  /** Returns the number of alive members in this node's region, itself included. */
  regionSize(): number {
    const region = this.#host.members.self.region;
    let size = 1;
    for (const member of this.#host.members.others()) {
      if (member.state === "alive" && member.region === region) size++;
    }
    return size;
  }

  sideOf(id: string): Side {
    const region = this.#host.members.get(id)?.region;
    return region === this.#host.members.self.region ? "local" : "remote";
  }

  /**
   * Links to other regions the node aims for: `crossRegionLinks` when
   * region awareness is on and other regions are known, all of them when
   * it is off (no preference).
   */
  remoteQuota(): number {
    const target = this.targetSize();
    if (this.#settings.regionAwareness === "off") return target;
    const selfRegion = this.#host.members.self.region;
    const remoteKnown = this.#host.members.others().some((member) =>
      member.region !== selfRegion
    );
    return remoteKnown ? Math.min(this.#settings.crossRegionLinks, target) : 0;
  }

  /**
   * Chooses `count` URLs to dial: remote ones until the remote quota is
   * met, local ones for the rest, and remote ones again when the region has
   * too few members. Without region awareness, any member.
   */
  #chooseDials(count: number, now: number): string[] {
    if (this.#settings.regionAwareness === "off") {
      return this.#planner.choose(this.#candidates(), count, now);
    }
    let remoteLinks = 0;
    for (const link of this.#links.values()) {
      if (this.sideOf(link.peer) === "remote") remoteLinks++;
    }
    const wantRemote = Math.max(0, this.remoteQuota() - remoteLinks);
    const chosen = this.#planner.choose(
      this.#candidates("remote"),
      Math.min(count, wantRemote),
      now,
    );
    chosen.push(
      ...this.#planner.choose(
        this.#candidates("local"),
        count - chosen.length,
        now,
      ),
    );
    if (chosen.length < count) {
      chosen.push(
        ...this.#planner.choose(this.#candidates(), count - chosen.length, now),
      );
    }
    return chosen;
  }

  /**
   * URLs worth dialling: passive members first; every other live member
   * when the passive view has none; seeds when no member is known.
   */
  #candidates(side?: Side): string[] {
    const members = this.#host.members;
    const selfRegion = members.self.region;
    const usable = (member: Member | undefined) =>
      member !== undefined && member.url !== null && member.state === "alive" &&
      !this.#links.has(member.id) && !this.#selfUrls.has(member.url) &&
      (side === undefined ||
        (member.region === selfRegion) === (side === "local"));
    let urls = [...this.#passive]
      .map((id) => members.get(id))
      .filter(usable)
      .map((member) => member!.url!);
    if (urls.length === 0) {
      urls = members.others().filter(usable).map((member) => member.url!);
    }
    if (urls.length === 0 || this.#links.size === 0) {
      const linkedUrls = new Set(
        [...this.#links.keys()].map((id) => members.get(id)?.url),
      );
      urls.push(
        ...this.#settings.seeds.filter((seed) =>
          !linkedUrls.has(seed) && !this.#selfUrls.has(seed)
        ),
      );
    }
    return urls;
  }

  #prefersNewLink(existing: Link, outbound: boolean, peer: string): boolean {
    const self = this.#host.members.self.id;
    const existingDialer = existing.outbound ? self : peer;
    const newDialer = outbound ? self : peer;
    // The same side dialled twice: the old link is probably dead.
    if (existingDialer === newDialer) return true;
    // Both sides dialled at once: both keep the link the lower id dialled.
    const lower = self < peer ? self : peer;
    return newDialer === lower;
  }

  #remove(link: Link): void {
    this.#links.delete(link.peer);
    this.#linkPeers.delete(link.id);
  }

  /**
   * Closes a random link this node dialled, other than `keep`, preferring
   * one on `side`, and then one that carries no tree; with `sideOnly`, only
   * one on `side`.
   */
  #dropRandomOutbound(keep: string, side?: Side, sideOnly = false): void {
    const candidates = [...this.#links.values()].filter((link) =>
      link.outbound && link.peer !== keep
    );
    // Prefer a link of the same side, so the regional shares stay.
    const sameSide = candidates.filter((link) =>
      this.sideOf(link.peer) === side
    );
    let outbound = sameSide.length > 0 || sideOnly ? sameSide : candidates;
    if (outbound.length === 0) return;
    const offTree = outbound.filter((link) =>
      !this.#host.carriesTree?.(link.peer)
    );
    if (offTree.length > 0) outbound = offTree;
    const victim = outbound[Math.floor(this.#host.random() * outbound.length)]!;
    this.#remove(victim);
    this.learn([victim.peer]);
    this.#host.closeLink(victim.id, "shuffle");
    this.#host.counters.inc("links_replaced");
  }
}
