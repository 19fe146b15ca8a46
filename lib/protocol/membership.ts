/**
 * The member table: every instance this node has heard of.
 *
 * A member record carries an incarnation number that only its owner raises.
 * A record with a higher incarnation replaces the one held, so an instance
 * that restarts on a new address is listed once, at the new address.
 *
 * @module
 */

import type { MemberInfo } from "./messages.ts";

/** Liveness of a member as this node sees it. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** A member record with local observations. */
export interface Member extends MemberInfo {
  state: MemberState;
  /** Local time of the last frame from it, or of the last news about it. */
  lastContactMs: number;
}

/**
 * Members by id, the local node included.
 *
 * @example
 * ```ts
 * import { MemberTable } from "./membership.ts";
 * const table = new MemberTable(
 *   { id: "a", region: "eu", url: "http://127.0.0.1:8001", incarnation: 0 },
 *   0,
 * );
 * table.upsert(
 *   { id: "b", region: "us", url: "http://127.0.0.1:8002", incarnation: 0 },
 *   1,
 * ); // "added"
 * table.size; // 2
 * ```
 */
export class MemberTable {
  readonly #members = new Map<string, Member>();
  readonly #selfId: string;

  constructor(self: MemberInfo, nowMs: number) {
    this.#selfId = self.id;
    this.#members.set(self.id, {
      ...self,
      state: "alive",
      lastContactMs: nowMs,
    });
  }

  /** Members known, the local node included. */
  get size(): number {
    return this.#members.size;
  }

  /** The local node's own record. */
  get self(): Member {
    return this.#members.get(this.#selfId)!;
  }

  /** Returns a member by id. */
  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  /** Iterates over all members, the local node included. */
  values(): IterableIterator<Member> {
    return this.#members.values();
  }

  /** Returns members other than the local node that are alive or suspect. */
  others(): Member[] {
    return [...this.#members.values()].filter((member) =>
      member.id !== this.#selfId &&
      (member.state === "alive" || member.state === "suspect")
    );
  }

  /**
   * Merges news about a member. A higher incarnation replaces the record; an
   * equal one refreshes contact time. News about the local node is ignored.
   */
  upsert(info: MemberInfo, nowMs: number): "added" | "updated" | "ignored" {
    if (info.id === this.#selfId) return "ignored";
    const current = this.#members.get(info.id);
    if (!current) {
      this.#members.set(info.id, {
        ...info,
        state: "alive",
        lastContactMs: nowMs,
      });
      return "added";
    }
    if (info.incarnation > current.incarnation) {
      Object.assign(current, info, { state: "alive", lastContactMs: nowMs });
      return "updated";
    }
    if (info.incarnation === current.incarnation) {
      current.lastContactMs = Math.max(current.lastContactMs, nowMs);
    }
    return "ignored";
  }

  /** Records a frame received from a member. */
  touch(id: string, nowMs: number): void {
    const member = this.#members.get(id);
    if (member) member.lastContactMs = nowMs;
  }

  /** Sets a member's state. */
  setState(id: string, state: MemberState): void {
    const member = this.#members.get(id);
    if (member && id !== this.#selfId) member.state = state;
  }

  /** Returns the wire records of all members that are not dead or gone. */
  infos(): MemberInfo[] {
    return [...this.#members.values()]
      .filter((member) =>
        member.state === "alive" || member.state === "suspect"
      )
      .map(({ id, region, url, incarnation }) => ({
        id,
        region,
        url,
        incarnation,
      }));
  }
}
