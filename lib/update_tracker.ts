/**
 * Update tracking: for each update (`key@version`) this instance applied,
 * when it applied it, from whom, and when it stopped spreading it. Together
 * with the replica and the rumor buffer this reports, per instance, whether
 * an update arrived and how long it took (`GET /v1/updates/:id`), and feeds
 * the dashboard's live view (`GET /v1/events`).
 *
 * @module
 */

import {
  compareVersions,
  parseVersion,
  type Version,
} from "./protocol/clock.ts";
import { type Entry, updateId } from "./protocol/entry.ts";
import type { ChangeSource, GossipNode } from "./protocol/node.ts";

/**
 * State of one update on one instance:
 * - `not_received`: the instance has no version of the key, or an older one.
 * - `spreading`: it has this version and still pushes it as a rumor.
 * - `done`: it has this version and no longer pushes it, or never did
 *   because anti-entropy delivered it.
 * - `superseded`: it has a newer version of the key.
 */
export type UpdateState = "not_received" | "spreading" | "done" | "superseded";

/** Report of `GET /v1/updates/:id` for one instance. */
export interface UpdateReport {
  /** Update id, `key@version`. */
  update: string;
  key: string;
  version: string;
  instance: string;
  region: string;
  state: UpdateState;
  /** Version of the key held here, or `null` when the key is unknown. */
  current_version: string | null;
  /** Wall time of the version: when the update was written. */
  written_at: string;
  /** When this instance applied the update; `null` when not received or not recorded. */
  applied_at: string | null;
  /** Milliseconds from the write to its application here; clocks of different machines skew this. */
  applied_after_ms: number | null;
  /** Source of the update here: local, rumor, push or pull. */
  source: ChangeSource | null;
  /** Peer it arrived from, or `null`. */
  from: string | null;
  /** When this instance stopped spreading it. */
  done_at: string | null;
  done_after_ms: number | null;
  /** Reason spreading stopped, such as `share_limit`, `feedback` or `anti_entropy`. */
  done_reason: string | null;
  /** Pushes made and duplicates reported by peers, while the rumor is infective. */
  rumor: { sends: number; duplicates: number } | null;
}

/** Raised for an update id that is not `key@wall.counter.node`. */
export class UpdateIdError extends Error {
  constructor(id: string) {
    super(
      `Invalid update id ${
        JSON.stringify(id.slice(0, 200))
      }: expected KEY@VERSION, such as features.checkout@1733300000000.0.eu-west-1`,
    );
    this.name = "UpdateIdError";
  }
}

/** Splits an update id into key and version; keys cannot contain `@`. */
export function parseUpdateId(id: string): { key: string; version: Version } {
  const at = id.indexOf("@");
  const version = at > 0 ? parseVersion(id.slice(at + 1)) : undefined;
  if (!version) throw new UpdateIdError(id);
  return { key: id.slice(0, at), version };
}

interface UpdateRecord {
  readonly key: string;
  readonly version: Version;
  appliedMs: number | undefined;
  source: ChangeSource | undefined;
  from: string | undefined;
  doneMs: number | undefined;
  doneReason: string | undefined;
}

/** A listener of tracked updates; receives the update id. */
export type UpdateListener = (id: string) => void;

/**
 * Applied and done times of recent updates, bounded to `capacity` updates
 * (the oldest are forgotten first).
 *
 * @example
 * ```ts
 * import { UpdateTracker } from "./update_tracker.ts";
 * const tracker = new UpdateTracker(100);
 * const entry = { key: "k", value: "1", version: [5, 0, "a"] as const };
 * tracker.applied(entry, "local", undefined, 7, true);
 * tracker.rumorDone("k", "share_limit", 9);
 * tracker.get("k@5.0.a")?.doneMs; // 9
 * ```
 */
export class UpdateTracker {
  readonly #capacity: number;
  readonly #records = new Map<string, UpdateRecord>();
  /** Update id each key's infective rumor spreads. */
  readonly #spreading = new Map<string, string>();
  readonly #listeners = new Set<UpdateListener>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Registers rumors restored from KV at start; their applied times are unknown. */
  restore(rumors: Iterable<{ key: string; version: Version }>): void {
    for (const rumor of rumors) {
      const id = updateId(rumor);
      this.#spreading.set(rumor.key, id);
      this.#record(id, rumor.key, rumor.version);
    }
  }

  /**
   * Records an applied update. `spreading` says whether the node started a
   * rumor for it; an update that arrived by anti-entropy is done at once.
   */
  applied(
    entry: Entry,
    source: ChangeSource,
    from: string | undefined,
    nowMs: number,
    spreading: boolean,
  ): void {
    const id = updateId(entry);
    const previous = this.#spreading.get(entry.key);
    if (previous !== undefined && previous !== id) {
      this.#finish(previous, nowMs, "replaced");
    }
    const record = this.#record(id, entry.key, entry.version);
    record.appliedMs = nowMs;
    record.source = source;
    record.from = from;
    if (spreading) {
      this.#spreading.set(entry.key, id);
    } else {
      this.#spreading.delete(entry.key);
      record.doneMs = nowMs;
      record.doneReason = "anti_entropy";
    }
    this.#publish(id);
  }

  /** Records that the rumor of a key stopped spreading. */
  rumorDone(key: string, reason: string, nowMs: number): void {
    const id = this.#spreading.get(key);
    if (id === undefined) return;
    this.#spreading.delete(key);
    this.#finish(id, nowMs, reason);
  }

  /** Returns the record of an update, if it is still held. */
  get(id: string): Readonly<UpdateRecord> | undefined {
    return this.#records.get(id);
  }

  /** Ids of the most recently recorded updates, newest first. */
  recent(limit: number): string[] {
    return [...this.#records.keys()].slice(-limit).reverse();
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: UpdateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #finish(id: string, nowMs: number, reason: string): void {
    const record = this.#records.get(id);
    if (!record || record.doneMs !== undefined) return;
    record.doneMs = nowMs;
    record.doneReason = reason;
    this.#publish(id);
  }

  #record(id: string, key: string, version: Version): UpdateRecord {
    let record = this.#records.get(id);
    if (!record) {
      record = {
        key,
        version,
        appliedMs: undefined,
        source: undefined,
        from: undefined,
        doneMs: undefined,
        doneReason: undefined,
      };
      this.#records.set(id, record);
      if (this.#records.size > this.#capacity) {
        const oldest = this.#records.keys().next().value!;
        this.#records.delete(oldest);
      }
    }
    return record;
  }

  #publish(id: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(id);
      } catch {
        // A failing listener must not stop the others or the gossip loop.
      }
    }
  }
}

/**
 * Builds the report of one update on this instance from the replica, the
 * rumor buffer and the tracker.
 *
 * @throws {UpdateIdError} for a malformed id.
 */
export function buildUpdateReport(
  node: GossipNode,
  tracker: UpdateTracker,
  id: string,
): UpdateReport {
  const { key, version } = parseUpdateId(id);
  const canonical = updateId({ key, version });
  const current = node.get(key);
  const rumor = node.rumor(key);
  const record = tracker.get(canonical);
  const order = current ? compareVersions(current.version, version) : -1;
  const rumorHere = rumor !== undefined &&
    compareVersions(rumor.version, version) === 0;
  const state: UpdateState = order < 0
    ? "not_received"
    : order > 0
    ? "superseded"
    : rumorHere
    ? "spreading"
    : "done";
  const writtenMs = version[0];
  const appliedMs = order < 0 ? undefined : record?.appliedMs;
  const doneMs = state === "spreading" ? undefined : record?.doneMs;
  return {
    update: canonical,
    key,
    version: canonical.slice(key.length + 1),
    instance: node.id,
    region: node.self.region,
    state,
    current_version: current ? updateId(current).slice(key.length + 1) : null,
    written_at: new Date(writtenMs).toISOString(),
    applied_at: iso(appliedMs),
    applied_after_ms: appliedMs === undefined ? null : appliedMs - writtenMs,
    source: record?.source ?? null,
    from: record?.from ?? null,
    done_at: iso(doneMs),
    done_after_ms: doneMs === undefined ? null : doneMs - writtenMs,
    done_reason: doneMs === undefined ? null : record?.doneReason ?? null,
    rumor: rumorHere
      ? { sends: rumor.sends, duplicates: rumor.duplicates }
      : null,
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
