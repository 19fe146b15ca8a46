/**
 * The rumor buffer: updates this node is still spreading.
 *
 * In the SIR model of rumor mongering a node is susceptible to an update
 * until it learns it, infective while it shares it, and removed once it
 * stops. Each rumor here stays infective until one of these holds:
 *
 * - it was pushed `shareLimit` times (the counter variant),
 * - `feedbackLimit` peers answered that they already had it (the feedback
 *   variant of Demers et al., "Epidemic Algorithms for Replicated Database
 *   Maintenance", PODC 1987),
 * - every current link is known to have it.
 *
 * A newer update of a key replaces the pending rumor of an older one, and
 * when a push cannot carry every rumor, the least shared go first. The
 * buffer is bounded: past `maxRumors`, the most shared rumor is dropped and
 * anti-entropy delivers it instead.
 *
 * @module
 */

import { compareVersions, type Version } from "./clock.ts";

/** Persisted form of a rumor, so a restart resumes sharing it. */
export interface RumorRecord {
  readonly key: string;
  readonly version: Version;
  readonly sends: number;
  readonly duplicates: number;
}

/** A rumor in memory. */
export interface Rumor {
  readonly key: string;
  readonly version: Version;
  /** Pushes made so far. */
  sends: number;
  /** Peers that answered that they already had it. */
  duplicates: number;
  /** Peers known to have it: it came from them or was pushed to them. */
  readonly informed: Set<string>;
}

/** Limits of a {@link RumorBuffer}. */
export interface RumorLimits {
  /** Pushes after which a rumor is removed. */
  shareLimit(): number;
  /** Duplicate answers after which a rumor is removed. */
  readonly feedbackLimit: number;
  /** Maximum rumors held at once. */
  readonly maxRumors: number;
}

/** Reason a rumor left the buffer. */
export type RemovalReason =
  | "share_limit"
  | "feedback"
  | "all_informed"
  | "replaced"
  | "overflow";

/**
 * Rumors keyed by config key.
 *
 * @example
 * ```ts
 * import { RumorBuffer } from "./rumors.ts";
 * const buffer = new RumorBuffer({
 *   shareLimit: () => 2, feedbackLimit: 1, maxRumors: 100,
 * });
 * buffer.add("a", [1, 0, "n1"]);
 * const plan = buffer.plan(["p1", "p2", "p3"], 3, 10, Math.random);
 * plan.pushes.size; // 2: the share limit stops it after two pushes
 * ```
 */
export class RumorBuffer {
  readonly #limits: RumorLimits;
  readonly #rumors = new Map<string, Rumor>();

  constructor(limits: RumorLimits) {
    this.#limits = limits;
  }

  /** Number of infective rumors. */
  get size(): number {
    return this.#rumors.size;
  }

  /** Returns the rumor for a key, if one is infective. */
  get(key: string): Rumor | undefined {
    return this.#rumors.get(key);
  }

  /** Infective rumors, in no particular order. */
  values(): IterableIterator<Rumor> {
    return this.#rumors.values();
  }

  /**
   * Starts spreading an update, replacing any older rumor of the same key.
   * Returns the keys of rumors removed to make room, with their reasons.
   */
  add(
    key: string,
    version: Version,
    informed: Iterable<string> = [],
    counts: { sends: number; duplicates: number } = { sends: 0, duplicates: 0 },
  ): Map<string, RemovalReason> {
    const removed = new Map<string, RemovalReason>();
    const current = this.#rumors.get(key);
    if (current && compareVersions(current.version, version) >= 0) {
      return removed;
    }
    if (!current && this.#rumors.size >= this.#limits.maxRumors) {
      const victim = this.#mostShared();
      if (victim) {
        this.#rumors.delete(victim.key);
        removed.set(victim.key, "overflow");
      }
    }
    this.#rumors.set(key, {
      key,
      version,
      sends: counts.sends,
      duplicates: counts.duplicates,
      informed: new Set(informed),
    });
    return removed;
  }

  /**
   * Records that `peer` has the update `key@version`, because it sent it to
   * us. When `duplicate` is true the peer told us it already had it, which
   * counts as feedback. Returns the removal reason if the rumor stopped.
   */
  markInformed(
    key: string,
    version: Version,
    peer: string,
    duplicate: boolean,
  ): RemovalReason | undefined {
    const rumor = this.#rumors.get(key);
    if (!rumor || compareVersions(rumor.version, version) !== 0) {
      return undefined;
    }
    rumor.informed.add(peer);
    if (!duplicate) return undefined;
    rumor.duplicates++;
    if (rumor.duplicates >= this.#limits.feedbackLimit) {
      this.#rumors.delete(key);
      return "feedback";
    }
    return undefined;
  }

  /**
   * Chooses the pushes of one gossip round: each rumor goes to up to
   * `fanout` random linked peers that are not known to have it, and each
   * peer gets at most `maxPerPeer` rumors, least shared first. Counts the
   * pushes and removes rumors that reached a limit.
   */
  plan(
    links: readonly string[],
    fanout: number,
    maxPerPeer: number,
    random: () => number,
    only?: ReadonlySet<string>,
  ): {
    pushes: Map<string, Rumor[]>;
    removed: Map<string, RemovalReason>;
  } {
    const pushes = new Map<string, Rumor[]>();
    const removed = new Map<string, RemovalReason>();
    // With no links nobody can be informed yet, so every rumor stays.
    if (links.length === 0) return { pushes, removed };
    const rumors = [...this.#rumors.values()]
      .filter((rumor) => !only || only.has(rumor.key))
      .sort((a, b) => a.sends - b.sends);
    const shareLimit = this.#limits.shareLimit();

    for (const rumor of rumors) {
      const candidates = links.filter((peer) => !rumor.informed.has(peer));
      if (candidates.length === 0) {
        this.#rumors.delete(rumor.key);
        removed.set(rumor.key, "all_informed");
        continue;
      }
      shuffle(candidates, random);
      let chosen = 0;
      for (const peer of candidates) {
        if (chosen >= fanout || rumor.sends >= shareLimit) break;
        const batch = pushes.get(peer) ?? [];
        if (batch.length >= maxPerPeer) continue;
        batch.push(rumor);
        pushes.set(peer, batch);
        rumor.informed.add(peer);
        rumor.sends++;
        chosen++;
      }
      if (rumor.sends >= shareLimit) {
        this.#rumors.delete(rumor.key);
        removed.set(rumor.key, "share_limit");
      }
    }
    return { pushes, removed };
  }

  /** Returns the persisted form of a rumor. */
  static record(rumor: Rumor): RumorRecord {
    return {
      key: rumor.key,
      version: rumor.version,
      sends: rumor.sends,
      duplicates: rumor.duplicates,
    };
  }

  #mostShared(): Rumor | undefined {
    let victim: Rumor | undefined;
    for (const rumor of this.#rumors.values()) {
      if (!victim || rumor.sends > victim.sends) victim = rumor;
    }
    return victim;
  }
}

/** Shuffles an array in place (Fisher–Yates). */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
