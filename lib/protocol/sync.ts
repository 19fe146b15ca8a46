/**
 * Anti-entropy: push-pull repair between two replicas by hash tree walk.
 *
 * The initiator sends the root hash. The responder answers, for each node it
 * was sent whose hash differs from its own, the hashes of that node's
 * children, or the keys and versions in it when the node is a leaf. The
 * initiator descends into the children that differ from its own, and for
 * each differing leaf it asks for the entries the responder has newer
 * (pull) and sends the entries it has newer itself (push), in the next
 * request; {@link SyncLimits.direction} can limit a session to one of the
 * two. The responder keeps no state between requests, so the same
 * exchange runs over a WebSocket or over plain HTTP.
 *
 * @module
 */

import { compareVersions, type Version } from "./clock.ts";
import { byteLength, type Entry } from "./entry.ts";
import { isTreePath, LEAF_COUNT, TREE_DEPTH } from "./digest.ts";
import type { Replica } from "./replica.ts";
import type { SyncRequest, SyncResponse } from "./messages.ts";

/**
 * Direction of an anti-entropy session. `push-pull` moves newer entries both
 * ways, `push` moves only the initiator's and `pull` only the responder's.
 */
export type SyncDirection = "push-pull" | "push" | "pull";

/** Size limits of one anti-entropy request or response. */
export interface SyncLimits {
  /** Most entries in one request or response. */
  readonly maxEntries: number;
  /** Budget for the entries of one request or response, in bytes. */
  readonly maxEntryBytes: number;
  /** Direction of the initiator's session; `push-pull` when left out. */
  readonly direction?: SyncDirection;
}

/** Limits of tree nodes and keys per request; the schemas allow 4096. */
const MAX_NODES_PER_REQUEST = 4096;
const MAX_WANTS_PER_REQUEST = 4096;
/** Estimated bytes of the answer for an inner node: 16 hex hashes. */
const INNER_NODE_BYTES = 16 * 35 + 40;
/** Estimated bytes of the answer for a leaf, before its items. */
const LEAF_BASE_BYTES = 40;
/** Estimated bytes of one `[key, version]` item of a leaf. */
const ITEM_BYTES = 96;

/** Approximate encoded size of an entry, in bytes. */
export function entrySize(entry: Entry): number {
  return byteLength(entry.key) + (entry.value?.length ?? 4) +
    (entry.sig?.length ?? 0) + 56;
}

/**
 * Answers one anti-entropy request from the responder's replica. Pushed
 * entries are not merged here: the caller merges `request.push` first, with
 * its own checks, then calls this.
 */
export function answerSync(
  replica: Replica,
  request: SyncRequest,
  limits: SyncLimits,
): SyncResponse {
  const diffs: SyncResponse["diffs"] = [];
  for (const [path, hash] of request.nodes) {
    if (!isTreePath(path)) continue;
    if (replica.tree.hashHex(path) === hash) continue;
    if (path.length === TREE_DEPTH) {
      const items: [string, Version][] = [];
      for (const key of replica.tree.keysAt(path)) {
        const entry = replica.get(key);
        if (entry) items.push([key, entry.version]);
      }
      diffs.push({ path, items });
    } else {
      diffs.push({ path, children: replica.tree.childrenHex(path) });
    }
  }

  const entries: Entry[] = [];
  const skipped: string[] = [];
  let bytes = 0;
  for (const key of request.want) {
    const entry = replica.get(key);
    if (!entry) continue;
    const size = entrySize(entry);
    const full = entries.length >= limits.maxEntries ||
      (entries.length > 0 && bytes + size > limits.maxEntryBytes);
    if (full) {
      skipped.push(key);
      continue;
    }
    entries.push(entry);
    bytes += size;
  }
  return { diffs, entries, skipped };
}

/** Counts of one finished or running anti-entropy session. */
export interface SyncStats {
  /** Request and response pairs exchanged. */
  rounds: number;
  /** Entries received from the responder. */
  pulled: number;
  /** Entries sent to the responder. */
  pushed: number;
  /** Tree nodes compared. */
  nodesCompared: number;
}

/**
 * The initiator's side of one anti-entropy session.
 *
 * @example
 * ```ts
 * import { Replica } from "./replica.ts";
 * import { answerSync, SyncSession } from "./sync.ts";
 * const a = new Replica();
 * const b = new Replica();
 * b.apply({ key: "k", value: "1", version: [1, 0, "b"] });
 * const limits = { maxEntries: 100, maxEntryBytes: 100_000 };
 * const session = new SyncSession(a, limits);
 * let request = session.first();
 * while (request) {
 *   const response = answerSync(b, request, limits);
 *   request = session.next(response, (entry) => a.apply(entry));
 * }
 * a.digest() === b.digest(); // true
 * ```
 */
export class SyncSession {
  readonly #replica: Replica;
  readonly #limits: SyncLimits;
  readonly #nodes: string[] = [];
  readonly #wants: string[] = [];
  readonly #pushes: string[] = [];
  /** Counts so far. */
  readonly stats: SyncStats = {
    rounds: 0,
    pulled: 0,
    pushed: 0,
    nodesCompared: 0,
  };

  constructor(replica: Replica, limits: SyncLimits) {
    this.#replica = replica;
    this.#limits = limits;
  }

  /** The opening request: the root hash alone. */
  first(): SyncRequest {
    this.#nodes.push("");
    return this.#request();
  }

  /**
   * Takes the responder's answer, hands the entries it carried to `merge`,
   * and returns the next request, or `undefined` when the replicas agree on
   * every range that was compared.
   */
  next(
    response: SyncResponse,
    merge: (entry: Entry) => void,
  ): SyncRequest | undefined {
    this.stats.rounds++;
    for (const entry of response.entries) {
      this.stats.pulled++;
      merge(entry);
    }
    this.#wants.unshift(...response.skipped);

    for (const diff of response.diffs) {
      if (diff.children) {
        this.#descend(diff.path, diff.children);
      } else if (diff.items) {
        this.#compareLeaf(diff.path, diff.items);
      }
    }
    const done = this.#nodes.length === 0 && this.#wants.length === 0 &&
      this.#pushes.length === 0;
    return done ? undefined : this.#request();
  }

  #descend(path: string, theirs: readonly string[]): void {
    if (path.length >= TREE_DEPTH) return;
    const mine = this.#replica.tree.childrenHex(path);
    for (let digit = 0; digit < mine.length; digit++) {
      if (mine[digit] !== theirs[digit]) {
        this.#nodes.push(path + digit.toString(16));
      }
    }
  }

  #compareLeaf(path: string, items: readonly [string, Version][]): void {
    const direction = this.#limits.direction ?? "push-pull";
    const theirs = new Map<string, Version>();
    const wants: string[] = [];
    const pushes: string[] = [];
    const sameVersion: string[] = [];
    for (const [key, version] of items) {
      theirs.set(key, version);
      const mine = this.#replica.get(key);
      const order = mine ? compareVersions(version, mine.version) : 1;
      if (order > 0) wants.push(key);
      if (order === 0) sameVersion.push(key);
    }
    for (const key of this.#replica.tree.keysAt(path)) {
      const mine = this.#replica.get(key);
      const their = theirs.get(key);
      if (mine && (!their || compareVersions(mine.version, their) > 0)) {
        pushes.push(key);
      }
    }
    if (wants.length === 0 && pushes.length === 0) {
      // The leaf hashes differ, yet every key has the same version on both
      // sides: some key has two values under one version. Exchanging
      // those keys lets both sides keep the one that compareEntries picks.
      wants.push(...sameVersion);
      pushes.push(...sameVersion);
    }
    if (direction !== "push") this.#wants.push(...wants);
    if (direction !== "pull") this.#pushes.push(...pushes);
  }

  /**
   * Returns how many of the queued tree nodes to send, so that the
   * responder's answer stays within half the entry budget: an inner node
   * answers with 16 hashes, a leaf with every key and version in it. Leaf
   * sizes are estimated from this replica, with room for twice the mean.
   * Without this bound, a round where most leaves differ would ask for an
   * answer larger than a frame, and fail every time.
   */
  #nodesThatFit(): number {
    const budget = this.#limits.maxEntryBytes / 2;
    const perLeaf = 2 * this.#replica.size / LEAF_COUNT + 4;
    let bytes = 0;
    let count = 0;
    for (const path of this.#nodes) {
      if (count >= MAX_NODES_PER_REQUEST) break;
      const cost = path.length === TREE_DEPTH
        ? LEAF_BASE_BYTES + perLeaf * ITEM_BYTES
        : INNER_NODE_BYTES;
      if (count > 0 && bytes + cost > budget) break;
      bytes += cost;
      count++;
    }
    return count;
  }

  #request(): SyncRequest {
    const nodes: [string, string][] = this.#nodes
      .splice(0, this.#nodesThatFit())
      .map((path) => [path, this.#replica.tree.hashHex(path)]);
    this.stats.nodesCompared += nodes.length;
    const want = this.#wants.splice(
      0,
      Math.min(MAX_WANTS_PER_REQUEST, this.#limits.maxEntries),
    );

    const push: Entry[] = [];
    let bytes = 0;
    while (this.#pushes.length > 0 && push.length < this.#limits.maxEntries) {
      const entry = this.#replica.get(this.#pushes[0]!);
      const size = entry ? entrySize(entry) : 0;
      if (push.length > 0 && bytes + size > this.#limits.maxEntryBytes) break;
      this.#pushes.shift();
      if (!entry) continue;
      push.push(entry);
      bytes += size;
    }
    this.stats.pushed += push.length;
    return { nodes, want, push };
  }
}
