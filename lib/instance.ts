/**
 * One running Grapevine instance: the protocol core wired to Deno KV,
 * WebSocket links, timers and the HTTP server.
 *
 * @module
 */

import { dirname } from "node:path";
import { ChangeFeed } from "./change_feed.ts";
import type { Settings } from "./config.ts";
import { createApp, type InstanceApi } from "./http/app.ts";
import { buildStatus, type StatusReport } from "./http/status.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { exportOtelMetrics, otelEnabled } from "./otel.ts";
import { type AcceptOptions, LinkManager } from "./net/link_manager.ts";
import { runHttpSync } from "./net/http_sync.ts";
import { sendDatagram } from "./net/datagram.ts";
import type { Frame } from "./protocol/messages.ts";
import { formatVersion } from "./protocol/clock.ts";
import type { Entry } from "./protocol/entry.ts";
import { Counters } from "./protocol/counters.ts";
import {
  type Change,
  GossipNode,
  type NodeEvent,
  WriteError,
} from "./protocol/node.ts";
import { KeyringError } from "./security/fleet_auth.ts";
import {
  loadSecurity,
  type Security,
  securityWarnings,
} from "./security/setup.ts";
import { frameEntries, PublisherKeyError } from "./security/signatures.ts";
import { TokenError } from "./security/tokens.ts";
import { CommitQueue } from "./store/commit_queue.ts";
import { KvStore } from "./store/kv_store.ts";
import type { Store } from "./store/store.ts";
import {
  buildUpdateReport,
  type UpdateReport,
  UpdateTracker,
} from "./update_tracker.ts";

/** Raised when an instance cannot start; the message says why and what to do. */
export class StartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StartError";
  }
}

/** Events kept in the watch replay buffer. */
const FEED_CAPACITY = 10_000;
/** Updates whose applied and done times are kept for update tracking. */
const TRACKER_CAPACITY = 10_000;
/**
 * Minimum time between two writes of the last-sync time to KV, unless a
 * quarter of the tombstone lifetime is shorter. A restarted instance may
 * thus judge itself away a little longer than it was, which only makes
 * the quarantine rule (see protocol/quarantine.ts) start early.
 */
const LAST_SYNC_WRITE_MS = 10_000;

/**
 * Test-only: milliseconds added to this instance's wall clock, read from
 * `GRAPEVINE_TEST_CLOCK_OFFSET_MS`, so that tests can run an instance whose
 * clock is minutes ahead or behind. Not a setting; never set it in
 * production.
 */
export function testClockOffsetMs(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): number {
  const text = env("GRAPEVINE_TEST_CLOCK_OFFSET_MS");
  if (text === undefined || text.trim() === "") return 0;
  const offset = Number(text);
  if (!Number.isSafeInteger(offset)) {
    throw new StartError(
      `Invalid GRAPEVINE_TEST_CLOCK_OFFSET_MS: ${
        JSON.stringify(text)
      } is not a whole number of milliseconds`,
    );
  }
  return offset;
}

/**
 * A running instance. Stop it with {@link close} or `await using`.
 *
 * @example
 * ```ts ignore
 * import { resolveSettings } from "./config.ts";
 * import { Instance } from "./instance.ts";
 * await using instance = await Instance.start(
 *   resolveSettings({ id: "a", port: 0, kvPath: "/tmp/a.kv" }),
 * );
 * await instance.write([{ key: "k", value: "1" }]);
 * ```
 */
export class Instance implements InstanceApi, AsyncDisposable {
  readonly settings: Settings;
  /** Counters of the core and the links, shared by both. */
  readonly counters = new Counters();
  readonly node: GossipNode;
  readonly feed: ChangeFeed;
  /** Applied and done times of recent updates. */
  readonly tracker = new UpdateTracker(TRACKER_CAPACITY);
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Base URL other instances dial, or null when not dialable. */
  readonly url: string | null;
  /** Port the HTTP server listens on. */
  readonly port: number;
  /** Fleet keys, access tokens and publisher keys. */
  readonly security: Security;
  readonly #store: Store;
  readonly #queue: CommitQueue;
  readonly #links: LinkManager;
  readonly #server: Deno.HttpServer;
  readonly #abort = new AbortController();
  readonly #startedMs = Date.now();
  readonly #tasks = new Set<Promise<unknown>>();
  /** HTTP client that trusts `tlsCa`, for dials and HTTP anti-entropy. */
  readonly #client: Deno.HttpClient | undefined;
  #app: ReturnType<typeof createApp> | undefined;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #lastSyncWriteMs = 0;
  #closed: Promise<void> | undefined;

  private constructor(parts: {
    settings: Settings;
    store: Store;
    log: Logger;
    security: Security;
    caCerts: string[] | undefined;
    build: (instance: Instance) => {
      node: GossipNode;
      server: Deno.HttpServer;
      port: number;
      url: string | null;
    };
  }) {
    this.settings = parts.settings;
    this.#store = parts.store;
    this.log = parts.log;
    this.security = parts.security;
    this.#client = parts.caCerts &&
      Deno.createHttpClient({ caCerts: parts.caCerts });
    const verifier = this.security.verifier;
    this.feed = new ChangeFeed(FEED_CAPACITY, crypto.randomUUID().slice(0, 8));
    this.#queue = new CommitQueue(
      this.#store,
      (error, ops) => {
        this.counters.inc("kv_commit_failures");
        this.log.error("KV commit failed", { error, ops });
      },
      (ms, ops) => this.metrics.observeCommit(ms, ops),
    );
    this.#links = new LinkManager({
      settings: this.settings,
      counters: this.counters,
      log: this.log,
      self: () => this.node.self,
      node: () => this.node,
      auth: this.security.auth,
      client: this.#client,
      prepare: verifier && ((frame) => {
        const entries = frameEntries(frame);
        return entries.length > 0 ? verifier.admit(entries) : undefined;
      }),
    });
    const built = parts.build(this);
    this.node = built.node;
    this.#server = built.server;
    this.port = built.port;
    this.url = built.url;
    this.tracker.restore(this.node.rumors());
    const metricsSource = {
      counters: this.counters,
      node: this.node,
      watchers: () => this.feed.listeners,
    };
    this.metrics = new Metrics(metricsSource, this.#startedMs);
    if (otelEnabled()) exportOtelMetrics(metricsSource);
    this.#app = createApp(this);
  }

  /**
   * Opens the KV file, loads the saved state, starts the HTTP server and
   * joins the fleet through the seeds.
   *
   * @throws {StartError} when the KV file belongs to another instance id,
   * the port is taken, or a key, token or TLS file cannot be used.
   */
  static async start(
    settings: Settings,
    options: {
      log?: Logger;
      store?: Store;
      /** Reads secrets; the process environment by default. */
      env?: (name: string) => string | undefined;
    } = {},
  ): Promise<Instance> {
    const security = await loadSecurity(settings, options.env).catch(
      (error) => {
        const known = error instanceof KeyringError ||
          error instanceof TokenError || error instanceof PublisherKeyError;
        if (!known) throw error;
        throw new StartError(error.message, { cause: error });
      },
    );
    const tls = await readTlsFiles(settings);
    const kvPath = settings.kvPath ||
      `.grapevine/${settings.id ?? "node"}.kv`;
    let store = options.store;
    if (!store) {
      await Deno.mkdir(dirname(kvPath), { recursive: true });
      try {
        store = await KvStore.open(kvPath);
      } catch (error) {
        throw new StartError(
          `Cannot open the KV file ${kvPath}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const state = await store.load();

    const id = settings.id ?? state.nodeId ??
      `node-${crypto.randomUUID().slice(0, 6)}`;
    if (state.nodeId && state.nodeId !== id) {
      store.close();
      throw new StartError(
        `KV file ${kvPath} belongs to instance ${state.nodeId}, not ${id}; start with --id ${state.nodeId} or give another --kv-path`,
      );
    }
    if (!state.nodeId) await store.setNodeId(id);

    const log = options.log ?? new Logger({
      level: settings.logLevel,
      format: settings.logFormat,
      base: { instance: id },
      // Deno exports console output as OpenTelemetry logs.
      write: otelEnabled() ? (line) => console.error(line) : undefined,
    });

    try {
      const instance = new Instance({
        settings: { ...settings, id },
        store,
        log,
        security,
        caCerts: tls.ca,
        build: (self) => self.#build(id, state, tls),
      });
      for (const warning of securityWarnings(security, settings)) {
        log.warn(warning);
      }
      instance.#startTimers();
      log.info("instance started", {
        url: instance.url,
        port: instance.port,
        region: settings.region,
        entries: instance.node.replica.live,
        rumors: instance.node.activeRumors,
        kv: kvPath,
        seeds: settings.seeds,
        tls: tls.cert !== undefined,
        fleet_key_ids: security.auth.keyring.ids,
        signatures_required: security.verifier !== undefined,
      });
      return instance;
    } catch (error) {
      store.close();
      if (error instanceof Deno.errors.AddrInUse) {
        throw new StartError(
          `Port ${settings.port} on ${settings.host} is already in use; choose another --port`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * Commits client changes to KV (entries and their rumors in one atomic
   * commit per batch), then applies them and starts spreading them.
   *
   * @throws {WriteError} when a key or value is invalid; nothing is stored.
   */
  async write(changes: Change[]): Promise<Entry[]> {
    if (this.#closed) throw new Error("Instance is closed");
    const verifier = this.security.verifier;
    if (!verifier) {
      // A version chosen by the client could equal one stamped elsewhere
      // with another value, and only publisher signatures vouch for it.
      const signed = changes.find((change) => change.version !== undefined);
      if (signed) {
        throw new WriteError(signed.key, {
          code: "bad_signature",
          message:
            `Write of ${signed.key} carries a publisher version and signature, but this instance has no publisher keys; send it unsigned, or configure the publisher keys`,
        });
      }
    } else {
      for (const change of changes) {
        if (change.version === undefined) {
          throw new WriteError(change.key, {
            code: "unsigned",
            message:
              `Write of ${change.key} is not signed, and this instance requires publisher signatures; sign it with the publisher key (main.ts push reads GRAPEVINE_SIGNING_KEY)`,
          });
        }
        const problem = await verifier.verify({
          key: change.key,
          value: change.value,
          version: change.version,
          sig: change.sig,
        });
        if (problem) {
          throw new WriteError(change.key, {
            code: problem,
            message: problem === "unsigned"
              ? `Write of ${change.key} has a version but no signature`
              : `Signature of ${change.key} does not verify with any publisher key`,
          });
        }
      }
    }
    const { entries, ops } = this.node.stampWrite(changes);
    await this.#queue.enqueue(ops);
    this.node.applyLocal(entries);
    return entries;
  }

  acceptLink(socket: WebSocket, options: AcceptOptions): void {
    this.#links.accept(socket, options);
  }

  socketsFrom(address: string): number {
    return this.#links.socketsFrom(address);
  }

  status(): StatusReport {
    return buildStatus(this.node, this.#startedMs, {
      maxProtocol: this.settings.maxProtocolVersion,
      protocolOf: (peer) => this.#links.protocolOf(peer),
    });
  }

  /** Aborted when the instance starts to stop. */
  get stopSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Reports whether this instance holds an update, when it applied it and
   * whether it still spreads it.
   *
   * @throws {UpdateIdError} when `id` is not `key@wall.counter.node`.
   */
  updateReport(id: string): UpdateReport {
    return buildUpdateReport(this.node, this.tracker, id);
  }

  /**
   * Stops timers, says goodbye on every link, stops the server and waits
   * for pending KV commits. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #build(
    id: string,
    state: Awaited<ReturnType<Store["load"]>>,
    tls: TlsFiles,
  ) {
    const settings = this.settings;
    const server = Deno.serve({
      hostname: settings.host,
      port: settings.port,
      onListen: () => {},
      ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
    }, (request, info) => {
      if (!this.#app) return new Response("starting", { status: 503 });
      return this.#app.fetch(request, { remoteAddr: info.remoteAddr });
    });
    const port = server.addr.port;
    if (!settings.advertiseUrl && urlHost(settings.host) !== settings.host) {
      this.log.warn(
        "listening on all interfaces without --advertise-url; peers on other machines cannot dial this instance",
        { host: settings.host },
      );
    }
    const scheme = tls.cert ? "https" : "http";
    const url = settings.advertiseUrl === "none"
      ? null
      : settings.advertiseUrl ||
        `${scheme}://${urlHost(settings.host)}:${port}`;

    const offsetMs = testClockOffsetMs();
    if (offsetMs !== 0) {
      this.log.warn("wall clock offset for tests", { offset_ms: offsetMs });
    }
    const node = new GossipNode({
      settings,
      self: { id, region: settings.region, url, incarnation: Date.now() },
      now: offsetMs === 0 ? Date.now : () => Date.now() + offsetMs,
      random: Math.random,
      counters: this.counters,
      state,
      admitEntry: this.security.verifier &&
        ((entry) => this.security.verifier!.check(entry)),
      effects: {
        send: (link, frame) => this.#links.send(link, frame),
        closeLink: (link, reason) => this.#links.close(link, reason),
        dial: (target) => this.#links.dial(target),
        syncOverHttp: (target) => this.#track(this.#httpSync(target)),
        datagram: (target, frame) => this.#track(this.#datagram(target, frame)),
        persist: (ops) => {
          this.#queue.enqueue(ops).catch(() => {
            // Logged by the queue; anti-entropy repairs what was not saved.
          });
        },
        emit: (event) => this.#onEvent(event),
      },
    });
    return { node, server, port, url };
  }

  #startTimers(): void {
    this.#tickTimer = setInterval(() => {
      try {
        this.node.tick();
      } catch (error) {
        this.log.error("gossip round failed", { error });
      }
    }, this.settings.gossipIntervalMs);
    // Join at once instead of one interval later.
    queueMicrotask(() => {
      if (!this.#closed) this.node.tick();
    });
  }

  async #datagram(url: string, frame: Frame): Promise<void> {
    const answer = await sendDatagram({
      url,
      frame,
      timeoutMs: this.settings.probeTimeoutMs,
      maxFrameBytes: this.settings.maxFrameBytes,
      signal: this.#abort.signal,
      auth: this.security.auth,
      client: this.#client,
    });
    if (answer && !this.#closed) this.node.handleDatagram(answer);
  }

  async #httpSync(url: string): Promise<void> {
    const driver = this.node.openHttpSync(url);
    if (!driver) return;
    await runHttpSync({
      url,
      from: this.node.id,
      driver,
      timeoutMs: this.settings.syncTimeoutMs,
      signal: this.#abort.signal,
      counters: this.counters,
      auth: this.security.auth,
      client: this.#client,
      admit: this.security.verifier &&
        ((entries) => this.security.verifier!.admit(entries)),
    });
  }

  #track(task: Promise<unknown>): void {
    this.#tasks.add(task);
    task.catch((error) => this.log.error("background task failed", { error }))
      .finally(() => this.#tasks.delete(task));
  }

  #onEvent(event: NodeEvent): void {
    switch (event.type) {
      case "change": {
        const now = Date.now();
        this.feed.publish(event.entry, event.source, now, event.from);
        const rumor = this.node.rumor(event.entry.key);
        const spreading = rumor !== undefined &&
          formatVersion(rumor.version) === formatVersion(event.entry.version);
        this.tracker.applied(
          event.entry,
          event.source,
          event.from,
          now,
          spreading,
        );
        break;
      }
      case "rejected":
        this.log.warn("entry rejected", {
          reason: event.reason,
          key: event.key,
          peer: event.from,
          detail: event.message,
        });
        break;
      case "link_up":
        this.log.info("link up", {
          peer: event.peer,
          outbound: event.outbound,
        });
        break;
      case "link_down":
        this.log.info("link down", { peer: event.peer });
        break;
      case "sync_done":
        this.counters.inc(
          "sync_rounds",
          { via: event.via },
          event.stats.rounds,
        );
        this.counters.inc(
          "sync_entries",
          { direction: "pulled" },
          event.stats.pulled,
        );
        this.counters.inc(
          "sync_entries",
          { direction: "pushed" },
          event.stats.pushed,
        );
        if (event.ok) {
          this.#recordSync();
          if (event.stats.pulled + event.stats.pushed > 0) {
            this.log.info("anti-entropy repaired entries", {
              peer: event.peer,
              via: event.via,
              ...event.stats,
            });
          }
        } else {
          this.log.warn("anti-entropy failed", {
            peer: event.peer,
            via: event.via,
            error: event.error,
          });
        }
        break;
      case "rumor_removed":
        this.tracker.rumorDone(event.key, event.reason, Date.now());
        break;
      case "quarantine":
        if (event.phase === "entered") {
          this.log.warn(
            "no anti-entropy session for longer than the tombstone lifetime; old entries quarantined until a peer confirms them",
            { entries: event.entries, last_sync_ms: this.node.lastSyncMs },
          );
        } else {
          this.log.info("quarantine ended; entries no peer held dropped", {
            entries: event.entries,
          });
        }
        break;
    }
  }

  #recordSync(): void {
    const lastSyncMs = this.node.lastSyncMs;
    if (lastSyncMs === undefined) return;
    const now = Date.now();
    const spacing = Math.min(
      LAST_SYNC_WRITE_MS,
      this.settings.tombstoneTtlMs / 4,
    );
    if (now - this.#lastSyncWriteMs < spacing) return;
    this.#lastSyncWriteMs = now;
    this.#track(this.#store.setLastSync(lastSyncMs));
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#tickTimer);
    // Announce the leave first, so peers stop probing this instance.
    this.node.leave();
    this.#abort.abort();
    this.feed.close();
    await this.#links.closeAll();
    await this.#server.shutdown();
    await Promise.allSettled([...this.#tasks]);
    await this.#queue.flush();
    this.#store.close();
    this.#client?.close();
    this.log.info("instance stopped");
  }
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/** TLS material read at start. */
interface TlsFiles {
  readonly cert?: string;
  readonly key?: string;
  /** CA certificates trusted when dialling peers. */
  readonly ca?: string[];
}

async function readTlsFiles(
  settings: Pick<Settings, "tlsCert" | "tlsKey" | "tlsCa">,
): Promise<TlsFiles> {
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new StartError(
        `Cannot read the ${what} ${path}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  const files: { cert?: string; key?: string; ca?: string[] } = {};
  if (settings.tlsCert) {
    files.cert = await read(settings.tlsCert, "TLS certificate");
    files.key = await read(settings.tlsKey, "TLS private key");
  }
  if (settings.tlsCa) files.ca = [await read(settings.tlsCa, "CA file")];
  return files;
}
