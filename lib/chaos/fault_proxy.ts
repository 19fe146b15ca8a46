/**
 * A TCP fault proxy for fleets of local instances: one listener per
 * instance, forwarding to that instance's port, with faults set per pair of
 * instances.
 *
 * Give each instance a route and advertise the route's URL
 * (`--advertise-url`), so that every peer link and every `/v1/sync` call to
 * it passes the proxy. A connection's destination is the route it arrived
 * on. Its source comes from a {@link SourceResolver}: on Linux,
 * {@link ProcessSources} finds the process that owns the client socket, so
 * no protocol has to name its sender. Connections whose source is unknown
 * are named `"?"` and match only wildcard faults.
 *
 * Faults act on TCP connections and the bytes in them, in each direction:
 *
 * - `cut`: open connections are closed and new ones are closed as soon as
 *   they arrive, as with a firewall that rejects.
 * - `drop`: bytes are discarded silently and connections hang until their
 *   endpoints time out, as when packets are lost. A connection that dropped
 *   bytes is closed once the fault is lifted, because its stream has a gap.
 * - `delayMs` and `jitterMs`: each chunk is held back by the delay plus a
 *   uniform random part of the jitter, in order.
 * - `rejectWebSockets`: connections that start with a WebSocket upgrade
 *   request are closed, so peer links cannot stay up while plain HTTP
 *   (such as `/v1/sync`) passes. The proxy looks for the upgrade header in
 *   the first chunk of the connection.
 *
 * On a connection that A opened to B, the fault from A to B applies to the
 * bytes A sends and the fault from B to A to the replies. A `cut` in either
 * direction closes it.
 *
 * @example
 * ```ts ignore
 * import { FaultProxy } from "./fault_proxy.ts";
 * const proxy = new FaultProxy();
 * const route = proxy.route("n1", 8001); // listens on a free port
 * proxy.set("*", "n1", { delayMs: 50 }); // 50 ms more towards n1
 * proxy.partition([["n1", "n2"], ["n3"]]);
 * proxy.heal();
 * await proxy.close();
 * ```
 *
 * @module
 */

/** Faults on the traffic from one instance to another. */
export interface Fault {
  /** Closes connections and rejects new ones. */
  readonly cut?: boolean;
  /** Discards bytes silently. */
  readonly drop?: boolean;
  /** Milliseconds each chunk is held back. */
  readonly delayMs?: number;
  /** Up to this many milliseconds more, uniform at random, per chunk. */
  readonly jitterMs?: number;
  /** Closes connections that open with a WebSocket upgrade request. */
  readonly rejectWebSockets?: boolean;
}

/** Finds the name of the instance that opened a connection. */
export type SourceResolver = (
  remote: Deno.NetAddr,
  local: Deno.NetAddr,
) => Promise<string | undefined>;

/** A proxy listener for one instance. */
export interface Route {
  readonly name: string;
  readonly port: number;
  /** Base URL to advertise for the instance, `http://127.0.0.1:PORT`. */
  readonly url: string;
}

/** Counts of what the proxy did. */
export interface ProxyStats {
  /** Connections forwarded. */
  accepted: number;
  /** Connections closed at once because a `cut` fault matched. */
  rejected: number;
  /** Open connections closed because a fault was set or lifted. */
  closed: number;
  /** Connections whose target port did not accept. */
  unreachable: number;
  /** Bytes discarded by `drop` faults. */
  droppedBytes: number;
  /** Bytes forwarded. */
  forwardedBytes: number;
}

/** Options of a {@link FaultProxy}. */
export interface FaultProxyOptions {
  /** Names the source of each connection; without it every source is `"?"`. */
  readonly resolveSource?: SourceResolver;
  /** Uniform random numbers in [0, 1) for jitter; `Math.random` by default. */
  readonly random?: () => number;
  /** Bytes held back per direction before reading pauses; 4 MiB by default. */
  readonly maxBufferedBytes?: number;
}

/** Source name of connections whose sender is unknown. */
export const UNKNOWN_SOURCE = "?";

const WILDCARD = "*";

interface RouteState {
  readonly route: Route;
  readonly listener: Deno.TcpListener;
  targetPort: number;
}

/**
 * The fault proxy. Every method that changes faults applies them to open
 * connections at once.
 */
export class FaultProxy {
  /** Counts since the start. */
  readonly stats: ProxyStats = {
    accepted: 0,
    rejected: 0,
    closed: 0,
    unreachable: 0,
    droppedBytes: 0,
    forwardedBytes: 0,
  };
  readonly #resolveSource: SourceResolver;
  readonly #random: () => number;
  readonly #maxBufferedBytes: number;
  readonly #routes = new Map<string, RouteState>();
  readonly #faults = new Map<string, Fault>();
  readonly #connections = new Set<ProxiedConnection>();
  readonly #tasks = new Set<Promise<void>>();
  #closed = false;

  constructor(options: FaultProxyOptions = {}) {
    this.#resolveSource = options.resolveSource ??
      (() => Promise.resolve(undefined));
    this.#random = options.random ?? Math.random;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  }

  /**
   * Starts a listener on 127.0.0.1 for the instance `name`, forwarding to
   * `127.0.0.1:targetPort`. `port` 0 picks a free port.
   *
   * @throws {Error} when `name` already has a route.
   */
  route(name: string, targetPort: number, port = 0): Route {
    if (this.#routes.has(name)) {
      throw new Error(`Route ${name} exists already; use retarget()`);
    }
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    const actual = listener.addr.port;
    const state: RouteState = {
      route: { name, port: actual, url: `http://127.0.0.1:${actual}` },
      listener,
      targetPort,
    };
    this.#routes.set(name, state);
    this.#track(this.#accept(state));
    return state.route;
  }

  /** Points a route at another port, as after a restart on a new port. */
  retarget(name: string, targetPort: number): void {
    const state = this.#routes.get(name);
    if (!state) throw new Error(`No route ${name}`);
    state.targetPort = targetPort;
  }

  /** Routes, by instance name. */
  routes(): Route[] {
    return [...this.#routes.values()].map((state) => state.route);
  }

  /**
   * Sets the fault on traffic from `from` to `to`; either may be `"*"` for
   * every instance. A more specific fault wins: pair, then source, then
   * destination, then `"*"` to `"*"`.
   */
  set(from: string, to: string, fault: Fault): void {
    this.#faults.set(faultKey(from, to), { ...fault });
    this.#refresh();
  }

  /** Removes the fault set for exactly this pair (wildcards included). */
  clear(from: string, to: string): void {
    this.#faults.delete(faultKey(from, to));
    this.#refresh();
  }

  /** Cuts both directions between two instances. */
  cut(a: string, b: string): void {
    this.#faults.set(faultKey(a, b), { cut: true });
    this.#faults.set(faultKey(b, a), { cut: true });
    this.#refresh();
  }

  /**
   * Cuts every pair of instances on different sides. Instances on no side
   * keep their links.
   */
  partition(sides: readonly (readonly string[])[]): void {
    for (const [i, side] of sides.entries()) {
      for (const [j, other] of sides.entries()) {
        if (i === j) continue;
        for (const a of side) {
          for (const b of other) {
            this.#faults.set(faultKey(a, b), { cut: true });
          }
        }
      }
    }
    this.#refresh();
  }

  /** Removes every fault. */
  heal(): void {
    this.#faults.clear();
    this.#refresh();
  }

  /** Returns the fault that applies to traffic from `from` to `to`. */
  faultOf(from: string, to: string): Fault {
    return this.#faults.get(faultKey(from, to)) ??
      this.#faults.get(faultKey(from, WILDCARD)) ??
      this.#faults.get(faultKey(WILDCARD, to)) ??
      this.#faults.get(faultKey(WILDCARD, WILDCARD)) ?? {};
  }

  /** Open connections, as source and destination names. */
  connections(): { from: string; to: string }[] {
    return [...this.#connections].map(({ from, to }) => ({ from, to }));
  }

  /** Stops every listener, closes every connection and waits for them. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#routes.values()) {
      try {
        state.listener.close();
      } catch {
        // Already closed.
      }
    }
    for (const connection of [...this.#connections]) connection.close();
    // Tasks may start more tasks while they wind down; a few passes settle.
    for (let pass = 0; pass < 5 && this.#tasks.size > 0; pass++) {
      await Promise.allSettled([...this.#tasks]);
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  #refresh(): void {
    for (const connection of [...this.#connections]) {
      const forward = this.faultOf(connection.from, connection.to);
      const back = this.faultOf(connection.to, connection.from);
      const dropping = forward.drop === true || back.drop === true;
      const noWebSockets = forward.rejectWebSockets === true ||
        back.rejectWebSockets === true;
      if (
        forward.cut || back.cut || (connection.dropped && !dropping) ||
        (connection.websocket && noWebSockets)
      ) {
        this.stats.closed++;
        connection.close();
      }
    }
  }

  async #accept(state: RouteState): Promise<void> {
    try {
      for await (const conn of state.listener) {
        if (this.#closed) {
          conn.close();
          break;
        }
        this.#track(this.#serve(state, conn));
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(state: RouteState, client: Deno.TcpConn): Promise<void> {
    const to = state.route.name;
    let from = UNKNOWN_SOURCE;
    try {
      from = await this.#resolveSource(
        client.remoteAddr as Deno.NetAddr,
        client.localAddr as Deno.NetAddr,
      ) ?? UNKNOWN_SOURCE;
    } catch {
      // An unknown source matches wildcard faults only.
    }
    if (
      this.#closed || this.faultOf(from, to).cut || this.faultOf(to, from).cut
    ) {
      this.stats.rejected++;
      closeQuietly(client);
      return;
    }
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({
        hostname: "127.0.0.1",
        port: state.targetPort,
      });
    } catch {
      this.stats.unreachable++;
      closeQuietly(client);
      return;
    }
    this.stats.accepted++;
    const connection = new ProxiedConnection(from, to, client, upstream);
    this.#connections.add(connection);
    try {
      // Faults may have changed while connecting.
      this.#refresh();
      await Promise.race([
        this.#pump(connection, client, upstream, from, to),
        this.#pump(connection, upstream, client, to, from),
      ]);
    } finally {
      connection.close();
      this.#connections.delete(connection);
      await connection.drained();
    }
  }

  /** Copies one direction of a connection, applying the fault of that direction. */
  async #pump(
    connection: ProxiedConnection,
    source: Deno.TcpConn,
    sink: Deno.TcpConn,
    from: string,
    to: string,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    const writer = new DelayedWriter(
      sink,
      connection.signal,
      () => connection.close(),
    );
    let first = source === connection.client;
    try {
      while (!connection.signal.aborted) {
        const read = await source.read(buffer);
        if (read === null) break;
        const fault = this.faultOf(from, to);
        if (fault.cut) break;
        if (first) {
          first = false;
          connection.websocket = isWebSocketUpgrade(buffer.subarray(0, read));
          this.#refresh();
          if (connection.signal.aborted) break;
        }
        if (fault.drop || connection.dropped) {
          connection.dropped = true;
          this.stats.droppedBytes += read;
          continue;
        }
        const jitter = (fault.jitterMs ?? 0) * this.#random();
        const delayMs = (fault.delayMs ?? 0) + jitter;
        writer.write(buffer.slice(0, read), delayMs);
        this.stats.forwardedBytes += read;
        if (writer.buffered > this.#maxBufferedBytes) await writer.idle();
      }
      await writer.idle();
    } catch {
      // Either side closed.
    } finally {
      connection.close();
      connection.addDrain(writer.idle());
    }
  }
}

/** One forwarded connection: the client side and the upstream side. */
class ProxiedConnection {
  readonly from: string;
  readonly to: string;
  /** Set once bytes were dropped; the stream then has a gap. */
  dropped = false;
  /** Whether the connection opened with a WebSocket upgrade request. */
  websocket = false;
  readonly client: Deno.TcpConn;
  readonly #conns: Deno.TcpConn[];
  readonly #abort = new AbortController();
  readonly #drains: Promise<void>[] = [];

  constructor(
    from: string,
    to: string,
    client: Deno.TcpConn,
    upstream: Deno.TcpConn,
  ) {
    this.from = from;
    this.to = to;
    this.client = client;
    this.#conns = [client, upstream];
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  close(): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    for (const conn of this.#conns) closeQuietly(conn);
  }

  addDrain(drain: Promise<void>): void {
    this.#drains.push(drain);
  }

  async drained(): Promise<void> {
    await Promise.allSettled(this.#drains);
  }
}

/**
 * Writes chunks to a connection in order, each no earlier than its delay
 * after it was queued. A failed write calls `onError` and abandons the
 * rest; the promises it hands out never reject.
 */
class DelayedWriter {
  readonly #sink: Deno.TcpConn;
  readonly #signal: AbortSignal;
  readonly #onError: () => void;
  #tail: Promise<void> = Promise.resolve();
  #lastDueMs = 0;
  /** Bytes queued and not yet written. */
  buffered = 0;

  constructor(sink: Deno.TcpConn, signal: AbortSignal, onError: () => void) {
    this.#sink = sink;
    this.#signal = signal;
    this.#onError = onError;
  }

  write(chunk: Uint8Array, delayMs: number): void {
    // Chunks keep their order even when a later one drew a shorter delay.
    const dueMs = Math.max(performance.now() + delayMs, this.#lastDueMs);
    this.#lastDueMs = dueMs;
    this.buffered += chunk.length;
    this.#tail = this.#tail.then(async () => {
      try {
        await sleepUntil(dueMs, this.#signal);
        if (!this.#signal.aborted) await writeAll(this.#sink, chunk);
      } catch {
        this.#onError();
      } finally {
        this.buffered -= chunk.length;
      }
    });
  }

  /** Settles when every queued chunk was written or abandoned. */
  idle(): Promise<void> {
    return this.#tail;
  }
}

function sleepUntil(dueMs: number, signal: AbortSignal): Promise<void> {
  const waitMs = dueMs - performance.now();
  if (waitMs <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    signal.addEventListener("abort", done);
  });
}

async function writeAll(conn: Deno.TcpConn, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    written += await conn.write(chunk.subarray(written));
  }
}

/** Returns whether the start of a connection is a WebSocket upgrade request. */
export function isWebSocketUpgrade(start: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(start.subarray(0, 4096));
  return head.startsWith("GET ") && /\r\nupgrade:\s*websocket/i.test(head);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function faultKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}
