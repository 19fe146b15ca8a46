/**
 * The record of every write and delete a chaos run attempted, and the check
 * of a converged fleet's final state against it.
 *
 * Each write carries a value unique to it (`{"op": ID}`), so a final value
 * names the write that produced it. "Later" means a higher version, because
 * every instance merges by version (last writer wins on the hybrid logical
 * clock). It is not the order in which the client saw acknowledgements: two
 * writes to one key on two instances within one millisecond are ordered by
 * version. The check, per key:
 *
 * - the final entry must be the acknowledged operation with the highest
 *   version, or a later one whose acknowledgement never arrived (it may
 *   have been committed just before a SIGKILL);
 * - an acknowledged write that a later operation did not replace is lost
 *   when the final entry is missing or older;
 * - a key whose latest acknowledged operation is a delete and that holds
 *   an entry with a version at or below that delete came back from the
 *   dead.
 *
 * @module
 */

import {
  compareVersions,
  parseVersion,
  type Version,
} from "../protocol/clock.ts";

/** One attempted operation. */
export interface OpRecord {
  /** Sequence number, unique in the run. */
  readonly id: number;
  readonly key: string;
  readonly kind: "put" | "delete";
  /** Instance the client sent it to. */
  readonly instance: string;
  /** Milliseconds since the run started, when the request was sent. */
  readonly sentMs: number;
  /** When the acknowledgement arrived, if it did. */
  ackedMs?: number;
  /** Version from the acknowledgement, `wall.counter.node`. */
  version?: string;
  /** Error message of a failed attempt; the operation may still have been stored. */
  error?: string;
}

/** A live entry of the final state. */
export interface FinalEntry {
  readonly value: unknown;
  readonly version: string;
}

/** A key whose final state breaks the rules. */
export interface Violation {
  readonly key: string;
  readonly kind: "lost" | "resurrected" | "unexplained";
  readonly detail: string;
}

/** Result of {@link checkHistory}. */
export interface CheckResult {
  readonly keys: number;
  readonly acknowledgedPuts: number;
  readonly acknowledgedDeletes: number;
  /** Operations whose acknowledgement never arrived. */
  readonly unacknowledged: number;
  /** Keys whose final state comes from an unacknowledged operation. */
  readonly fromUnacknowledged: number;
  readonly lost: Violation[];
  readonly resurrected: Violation[];
  readonly unexplained: Violation[];
}

/** Records operations as a run attempts them. */
export class History {
  readonly ops: OpRecord[] = [];
  readonly #startedMs = performance.now();
  #nextId = 1;

  /** Records an attempt and returns its record and the value a put writes. */
  begin(
    key: string,
    kind: "put" | "delete",
    instance: string,
  ): { record: OpRecord; value: { op: number } } {
    const record: OpRecord = {
      id: this.#nextId++,
      key,
      kind,
      instance,
      sentMs: this.elapsedMs(),
    };
    this.ops.push(record);
    return { record, value: { op: record.id } };
  }

  /** Records the acknowledgement of an attempt. */
  acknowledge(record: OpRecord, version: string): void {
    record.ackedMs = this.elapsedMs();
    record.version = version;
  }

  /** Records a failed attempt. */
  fail(record: OpRecord, error: unknown): void {
    record.error = error instanceof Error ? error.message : String(error);
  }

  /** Milliseconds since the history started. */
  elapsedMs(): number {
    return performance.now() - this.#startedMs;
  }
}

/**
 * Checks the final live entries of a converged instance against every
 * attempted operation.
 */
export function checkHistory(
  ops: readonly OpRecord[],
  final: ReadonlyMap<string, FinalEntry>,
): CheckResult {
  const byKey = new Map<string, OpRecord[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  const lost: Violation[] = [];
  const resurrected: Violation[] = [];
  const unexplained: Violation[] = [];
  let fromUnacknowledged = 0;

  for (const [key, list] of byKey) {
    const verdict = checkKey(key, list, final.get(key));
    if (verdict === "unacknowledged") fromUnacknowledged++;
    else if (verdict !== "ok") {
      if (verdict.kind === "lost") lost.push(verdict);
      else if (verdict.kind === "resurrected") resurrected.push(verdict);
      else unexplained.push(verdict);
    }
  }
  for (const [key, entry] of final) {
    if (byKey.has(key)) continue;
    unexplained.push({
      key,
      kind: "unexplained",
      detail: `holds ${JSON.stringify(entry.value)} but no write was sent`,
    });
  }

  return {
    keys: byKey.size,
    acknowledgedPuts: ops.filter((op) => op.kind === "put" && op.version)
      .length,
    acknowledgedDeletes: ops.filter((op) => op.kind === "delete" && op.version)
      .length,
    unacknowledged: ops.filter((op) => !op.version).length,
    fromUnacknowledged,
    lost,
    resurrected,
    unexplained,
  };
}

function checkKey(
  key: string,
  ops: readonly OpRecord[],
  entry: FinalEntry | undefined,
): "ok" | "unacknowledged" | Violation {
  let latest: { op: OpRecord; version: Version } | undefined;
  for (const op of ops) {
    const version = op.version ? parseVersion(op.version) : undefined;
    if (!version) continue;
    if (!latest || compareVersions(version, latest.version) > 0) {
      latest = { op, version };
    }
  }
  const writer = entry ? writerOf(entry) : undefined;
  const writerOp = ops.find((op) => op.id === writer && op.kind === "put");
  const unacknowledgedDelete = ops.some((op) =>
    op.kind === "delete" && !op.version
  );

  if (!latest) {
    // Nothing acknowledged: any final state an attempt explains is fine.
    if (!entry) return "ok";
    if (writerOp) return "unacknowledged";
    return violation(key, "unexplained", `holds ${describe(entry)}`);
  }

  if (!entry) {
    if (latest.op.kind === "delete") return "ok";
    if (unacknowledgedDelete) return "unacknowledged";
    return violation(
      key,
      "lost",
      `acknowledged write op ${latest.op.id} at ${latest.op.version} is missing`,
    );
  }

  const version = parseVersion(entry.version);
  if (!version) {
    return violation(key, "unexplained", `invalid version ${entry.version}`);
  }
  const order = compareVersions(version, latest.version);
  if (order === 0) {
    if (latest.op.kind === "put" && writer === latest.op.id) return "ok";
    return violation(
      key,
      "unexplained",
      `holds ${describe(entry)} at the version of op ${latest.op.id}`,
    );
  }
  if (order > 0) {
    // Newer than anything acknowledged: an unacknowledged put must explain it.
    if (writerOp && !writerOp.version) return "unacknowledged";
    return violation(key, "unexplained", `holds ${describe(entry)}`);
  }
  if (latest.op.kind === "delete") {
    return violation(
      key,
      "resurrected",
      `holds ${
        describe(entry)
      } after the acknowledged delete op ${latest.op.id} at ${latest.op.version}`,
    );
  }
  return violation(
    key,
    "lost",
    `holds ${
      describe(entry)
    }, older than the acknowledged write op ${latest.op.id} at ${latest.op.version}`,
  );
}

function writerOf(entry: FinalEntry): number | undefined {
  const value = entry.value as { op?: unknown } | null;
  return typeof value?.op === "number" ? value.op : undefined;
}

function describe(entry: FinalEntry): string {
  return `${JSON.stringify(entry.value)} at ${entry.version}`;
}

function violation(
  key: string,
  kind: Violation["kind"],
  detail: string,
): Violation {
  return { key, kind, detail };
}
