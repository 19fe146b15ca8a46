/**
 * The Deno KV store.
 *
 * Layout:
 *
 * - `["entry", key]` → `{ value, version, sig? }`; `value` is JSON text or
 *   `null` for a tombstone, `sig` the publisher's signature when there is one
 * - `["rumor", key]` → `{ version, sends, duplicates }`: rumors still to share
 * - `["meta", "node"]` → owner id; `["meta", "clock"]` → highest version
 *   issued; `["meta", "last_sync"]` → time of the last successful
 *   anti-entropy session
 *
 * @module
 */

import type { Version } from "../protocol/clock.ts";
import type { Entry } from "../protocol/entry.ts";
import type { PersistOp } from "../protocol/node.ts";
import type { RumorRecord } from "../protocol/rumors.ts";
import type { CommitLimits, Store, StoredState } from "./store.ts";

/** Deno KV allows 1000 mutations and 800 KiB per atomic commit (Deno 2.9). */
const KV_LIMITS: CommitLimits = { maxOps: 1000, maxBytes: 700 * 1024 };

interface StoredEntry {
  value: string | null;
  version: Version;
  sig?: string;
}

interface StoredRumor {
  version: Version;
  sends: number;
  duplicates: number;
}

/**
 * A {@link Store} in a Deno KV file.
 *
 * @example
 * ```ts ignore
 * import { KvStore } from "./kv_store.ts";
 * const store = await KvStore.open("/tmp/example.kv");
 * const state = await store.load();
 * store.close();
 * ```
 */
export class KvStore implements Store {
  readonly limits = KV_LIMITS;
  readonly #kv: Deno.Kv;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Opens (or creates) the KV file at `path`. Without a path it opens the
   * default database: on Deno Deploy, the app's managed KV database.
   */
  static async open(path?: string): Promise<KvStore> {
    return new KvStore(await Deno.openKv(path));
  }

  async load(): Promise<StoredState> {
    const entries: Entry[] = [];
    for await (
      const item of this.#kv.list<StoredEntry>({ prefix: ["entry"] }, {
        batchSize: 1000,
      })
    ) {
      const key = item.key[1];
      if (typeof key !== "string") continue;
      const { value, version, sig } = item.value;
      entries.push(
        sig === undefined ? { key, value, version } : {
          key,
          value,
          version,
          sig,
        },
      );
    }

    const rumors: RumorRecord[] = [];
    for await (
      const item of this.#kv.list<StoredRumor>({ prefix: ["rumor"] })
    ) {
      const key = item.key[1];
      if (typeof key !== "string") continue;
      rumors.push({ key, ...item.value });
    }

    const [node, clock, lastSync] = await this.#kv.getMany<
      [string, Version, number]
    >([["meta", "node"], ["meta", "clock"], ["meta", "last_sync"]]);
    return {
      nodeId: node.value ?? undefined,
      entries,
      rumors,
      clock: clock.value ?? undefined,
      lastSyncMs: lastSync.value ?? undefined,
    };
  }

  async commit(ops: readonly PersistOp[]): Promise<void> {
    const atomic = this.#kv.atomic();
    for (const op of ops) {
      switch (op.type) {
        case "entry":
          atomic.set(
            ["entry", op.entry.key],
            {
              value: op.entry.value,
              version: op.entry.version,
              ...(op.entry.sig === undefined ? {} : { sig: op.entry.sig }),
            } satisfies StoredEntry,
          );
          break;
        case "forget":
          atomic.delete(["entry", op.key]);
          break;
        case "rumor":
          atomic.set(
            ["rumor", op.rumor.key],
            {
              version: op.rumor.version,
              sends: op.rumor.sends,
              duplicates: op.rumor.duplicates,
            } satisfies StoredRumor,
          );
          break;
        case "rumor_done":
          atomic.delete(["rumor", op.key]);
          break;
        case "clock":
          atomic.set(["meta", "clock"], op.version);
          break;
      }
    }
    const result = await atomic.commit();
    if (!result.ok) throw new Error("Deno KV atomic commit failed");
  }

  async setNodeId(id: string): Promise<void> {
    await this.#kv.set(["meta", "node"], id);
  }

  async setLastSync(ms: number): Promise<void> {
    await this.#kv.set(["meta", "last_sync"], ms);
  }

  close(): void {
    this.#kv.close();
  }
}
