/**
 * The member table: every instance this node has heard of, with the state
 * the SWIM protocol assigns it (alive, suspect, dead, left).
 *
 * Each member owns an incarnation number that only it raises. News about a
 * member is ordered by incarnation first and by state second, as in SWIM
 * (Das, Gupta and Motivala, DSN 2002):
 *
 * - `alive` with a higher incarnation wins over anything held;
 * - `suspect` wins over `alive` of the same or a lower incarnation;
 * - `dead` and `left` win over `alive` and `suspect` of the same or a lower
 *   incarnation.
 *
 * A member that hears it is suspected or declared dead refutes it by raising
 * its own incarnation above the rumor's and announcing itself alive. An
 * instance that restarts starts with a higher incarnation than before, so
 * its new record replaces the old one, new address included.
 *
 * @module
 */

import type { MEMBER_STATES, MemberInfo, MemberUpdate } from "./messages.ts";

/** Liveness of a member, as recorded by this node. */
export type MemberState = (typeof MEMBER_STATES)[number];

/** A member record with local observations. */
export interface Member extends MemberInfo {
  state: MemberState;
  /** Local time of the last frame from it, or of the last news about it. */
  lastContactMs: number;
  /** Local time the member entered its current state. */
  stateSinceMs: number;
}

/** Outcome of {@link MemberTable.apply}. */
export type ApplyResult =
  /** The table changed; the update is worth passing on. */
  | "changed"
  /** Old or equal news; nothing changed. */
  | "ignored"
  /** The update suspected or buried this node; it raised its incarnation. */
  | "refuted"
  /** The table is full and the member is new to it. */
  | "table_full"
  /** The incarnation is further ahead of the local clock than any can be. */
  | "future_incarnation";

/**
 * How far ahead of the local clock an incarnation may be. An instance
 * starts at its wall clock in milliseconds and raises it by one per
 * refutation, so only a forged update or a clock a day off comes near it.
 * Without a bound, one forged update at the largest incarnation would make
 * its member unable to refute it, and shut it out of the fleet for good.
 */
export const MAX_INCARNATION_LEAD_MS = 24 * 60 * 60 * 1000;

const RANK: Record<MemberState, number> = {
  alive: 0,
  suspect: 1,
  dead: 2,
  left: 2,
};

/**
 * Members by id, this node included.
 *
 * @example
 * ```ts
 * import { MemberTable } from "./membership.ts";
 * const table = new MemberTable(
 *   { id: "a", region: "eu", url: "http://127.0.0.1:8001", incarnation: 1 },
 *   0,
 * );
 * table.apply({
 *   id: "b", region: "us", url: "http://127.0.0.1:8002", incarnation: 1,
 *   state: "alive",
 * }, 5); // "changed"
 * table.apply({ ...table.get("b")!, state: "suspect" }, 6); // "changed"
 * table.get("b")?.state; // "suspect"
 * ```
 */
export class MemberTable {
  readonly #members = new Map<string, Member>();
  readonly #selfId: string;
  readonly #maxMembers: number;

  constructor(self: MemberInfo, nowMs: number, maxMembers = Infinity) {
    this.#selfId = self.id;
    this.#maxMembers = maxMembers;
    this.#members.set(self.id, {
      ...self,
      state: "alive",
      lastContactMs: nowMs,
      stateSinceMs: nowMs,
    });
  }

  /** Members known, this node and dead members included. */
  get size(): number {
    return this.#members.size;
  }

  /** Members that are alive or suspect, this node included. */
  get liveCount(): number {
    let count = 0;
    for (const member of this.#members.values()) {
      if (member.state === "alive" || member.state === "suspect") count++;
    }
    return count;
  }

  /** This node's own record. */
  get self(): Member {
    return this.#members.get(this.#selfId)!;
  }

  /** Returns a member by id. */
  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  /** Iterates over all members, this node and dead members included. */
  values(): IterableIterator<Member> {
    return this.#members.values();
  }

  /** Returns members other than this node that are alive or suspect. */
  others(): Member[] {
    return [...this.#members.values()].filter((member) =>
      member.id !== this.#selfId &&
      (member.state === "alive" || member.state === "suspect")
    );
  }

  /** Returns the wire record of a member. */
  static info(member: MemberInfo): MemberInfo {
    const { id, region, url, incarnation } = member;
    return { id, region, url, incarnation };
  }

  /** Returns the update that describes a member's current state. */
  static update(member: Member): MemberUpdate {
    return { ...MemberTable.info(member), state: member.state };
  }

  /** Returns the wire records of members that are alive or suspect. */
  infos(): MemberInfo[] {
    return [...this.#members.values()]
      .filter((member) =>
        member.state === "alive" || member.state === "suspect"
      )
      .map(MemberTable.info);
  }

  /** Merges one membership update by the rules in the module comment. */
  apply(update: MemberUpdate, nowMs: number): ApplyResult {
    if (update.incarnation > nowMs + MAX_INCARNATION_LEAD_MS) {
      return "future_incarnation";
    }
    if (update.id === this.#selfId) return this.#applyToSelf(update);

    const current = this.#members.get(update.id);
    if (!current && this.#members.size >= this.#maxMembers) {
      return "table_full";
    }
    if (!current) {
      this.#members.set(update.id, {
        ...MemberTable.info(update),
        state: update.state,
        lastContactMs: nowMs,
        stateSinceMs: nowMs,
      });
      return "changed";
    }
    const newer = update.incarnation > current.incarnation ||
      (update.incarnation === current.incarnation &&
        RANK[update.state] > RANK[current.state]);
    if (!newer) {
      if (
        update.incarnation === current.incarnation &&
        update.state === current.state
      ) {
        current.lastContactMs = Math.max(current.lastContactMs, nowMs);
      }
      return "ignored";
    }
    const stateChanged = update.state !== current.state;
    Object.assign(current, MemberTable.info(update), {
      state: update.state,
      lastContactMs: nowMs,
    });
    if (stateChanged) current.stateSinceMs = nowMs;
    return "changed";
  }

  /**
   * Raises this node's incarnation, for a refutation or a graceful leave.
   * Returns the new incarnation.
   */
  bumpIncarnation(atLeast = 0): number {
    const self = this.self;
    self.incarnation = Math.max(self.incarnation, atLeast) + 1;
    return self.incarnation;
  }

  /** Sets this node's own state, for a graceful leave. */
  setSelfState(state: MemberState, nowMs: number): void {
    const self = this.self;
    self.state = state;
    self.stateSinceMs = nowMs;
  }

  /** Records a frame received from a member. */
  touch(id: string, nowMs: number): void {
    const member = this.#members.get(id);
    if (member) member.lastContactMs = Math.max(member.lastContactMs, nowMs);
  }

  /**
   * Forgets members that have been dead or gone for `retentionMs`. Returns
   * the ids removed.
   */
  prune(nowMs: number, retentionMs: number): string[] {
    const removed: string[] = [];
    for (const member of this.#members.values()) {
      const gone = member.state === "dead" || member.state === "left";
      if (gone && nowMs - member.stateSinceMs >= retentionMs) {
        removed.push(member.id);
      }
    }
    for (const id of removed) this.#members.delete(id);
    return removed;
  }

  #applyToSelf(update: MemberUpdate): ApplyResult {
    const self = this.self;
    if (self.state === "left") return "ignored";
    const accusation = update.state === "suspect" || update.state === "dead";
    if (accusation && update.incarnation >= self.incarnation) {
      this.bumpIncarnation(update.incarnation);
      return "refuted";
    }
    return "ignored";
  }
}
