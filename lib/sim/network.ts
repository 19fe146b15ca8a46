/**
 * The simulated network: per-frame latency, loss and partitions, the links
 * between simulated nodes, and traffic counts.
 *
 * A link has two ends with their own ids, as two WebSocket objects would:
 * `2 × link` at the dialer and `2 × link + 1` at the acceptor.
 *
 * @module
 */

import type { Frame } from "../protocol/messages.ts";
import type { Random } from "./random.ts";

/** Delay and loss of frames between nodes. */
export interface NetworkConditions {
  /** Fixed one-way delay of every frame, in milliseconds. */
  readonly latencyMs: number;
  /** Extra one-way delay drawn uniformly from 0 to this, in milliseconds. */
  readonly jitterMs: number;
  /** Probability that a frame is lost, from 0 to 1. */
  readonly lossRate: number;
}

/** Default conditions: a data centre with 10 to 15 ms one-way delay. */
export const DEFAULT_CONDITIONS: NetworkConditions = {
  latencyMs: 10,
  jitterMs: 5,
  lossRate: 0,
};

/** A link between two simulated nodes, by node index. */
export interface SimLink {
  readonly id: number;
  readonly dialer: number;
  readonly acceptor: number;
  /** Whether the acceptor's node has registered its end. */
  acceptorOpen: boolean;
  open: boolean;
}

/** Reasons a frame was not delivered. */
export type DropReason = "loss" | "partition" | "closed" | "offline";

/** Frames and entries counted by the network. */
export interface Traffic {
  /** Frames sent, by frame type, lost ones included. */
  readonly framesByType: Map<string, number>;
  /** Entries carried by `rumor` frames. */
  rumorEntries: number;
  /** Frames not delivered, by reason. */
  readonly dropped: Map<DropReason, number>;
}

/** Returns the link id of a link end. */
export function linkOf(end: number): number {
  return end >> 1;
}

/** Returns the id of the other end of a link end. */
export function otherEnd(end: number): number {
  return end ^ 1;
}

/** Returns whether a link end is the dialer's. */
export function isDialerEnd(end: number): boolean {
  return (end & 1) === 0;
}

/**
 * Links, conditions and partitions of one simulation.
 *
 * @example
 * ```ts
 * import { SimNetwork } from "./network.ts";
 * const network = new SimNetwork({}, () => 0.5);
 * network.partition([[0, 1], [2]]);
 * network.reachable(0, 2); // false
 * ```
 */
export class SimNetwork {
  readonly conditions: NetworkConditions;
  readonly traffic: Traffic = {
    framesByType: new Map(),
    rumorEntries: 0,
    dropped: new Map(),
  };
  readonly #random: Random;
  readonly #links = new Map<number, SimLink>();
  #groups: Map<number, number> | undefined;
  #nextLink = 1;

  constructor(conditions: Partial<NetworkConditions>, random: Random) {
    this.conditions = { ...DEFAULT_CONDITIONS, ...conditions };
    const { latencyMs, jitterMs, lossRate } = this.conditions;
    if (!(latencyMs >= 0) || !(jitterMs >= 0)) {
      throw new RangeError(
        `Invalid latency ${latencyMs} ms or jitter ${jitterMs} ms: both must be 0 or more`,
      );
    }
    if (!(lossRate >= 0 && lossRate <= 1)) {
      throw new RangeError(
        `Invalid loss rate ${lossRate}: expected a fraction from 0 to 1`,
      );
    }
    this.#random = random;
  }

  /** Open links. */
  get openLinks(): number {
    return this.#links.size;
  }

  /**
   * Splits the nodes into groups that cannot reach each other. Nodes not
   * named in any group form one more group together.
   */
  partition(groups: readonly (readonly number[])[]): void {
    const map = new Map<number, number>();
    for (const [group, members] of groups.entries()) {
      for (const node of members) map.set(node, group + 1);
    }
    this.#groups = map;
  }

  /** Ends every partition. */
  heal(): void {
    this.#groups = undefined;
  }

  /** Returns whether frames from node `a` can reach node `b`. */
  reachable(a: number, b: number): boolean {
    if (!this.#groups) return true;
    return (this.#groups.get(a) ?? 0) === (this.#groups.get(b) ?? 0);
  }

  /** Draws the one-way delay of one frame, in milliseconds. */
  delayMs(): number {
    const { latencyMs, jitterMs } = this.conditions;
    return latencyMs + (jitterMs > 0 ? this.#random() * jitterMs : 0);
  }

  /** Draws whether one frame is lost. */
  lost(): boolean {
    const { lossRate } = this.conditions;
    return lossRate > 0 && this.#random() < lossRate;
  }

  /** Opens a link from `dialer` to `acceptor`; the acceptor's end starts closed. */
  open(dialer: number, acceptor: number): SimLink {
    const link: SimLink = {
      id: this.#nextLink++,
      dialer,
      acceptor,
      acceptorOpen: false,
      open: true,
    };
    this.#links.set(link.id, link);
    return link;
  }

  /** Returns the open link of a link end. */
  get(end: number): SimLink | undefined {
    return this.#links.get(linkOf(end));
  }

  /** Marks a link closed and removes it from the open links. */
  close(link: SimLink): void {
    link.open = false;
    this.#links.delete(link.id);
  }

  /** Open links, in the order they were opened. */
  links(): IterableIterator<SimLink> {
    return this.#links.values();
  }

  /** Counts a frame that was sent. */
  countSent(frame: Frame): void {
    const counts = this.traffic.framesByType;
    counts.set(frame.type, (counts.get(frame.type) ?? 0) + 1);
    if (frame.type === "rumor") {
      this.traffic.rumorEntries += frame.entries.length;
    }
  }

  /** Counts a frame that was not delivered. */
  countDropped(reason: DropReason): void {
    const dropped = this.traffic.dropped;
    dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
  }
}
