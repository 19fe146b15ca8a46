/**
 * A TCP proxy on 127.0.0.1 that a test can cut: it drops every open
 * connection on demand and refuses new ones while paused, to force a
 * client to reconnect.
 *
 * @module
 */

/** A proxy to one local port. */
export class TcpProxy {
  readonly port: number;
  /** While true, new connections are closed as soon as they arrive. */
  paused = false;
  readonly #listener: Deno.TcpListener;
  readonly #targetPort: number;
  readonly #pairs = new Set<[Deno.Conn, Deno.Conn | undefined]>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, targetPort: number) {
    this.#listener = listener;
    this.#targetPort = targetPort;
    this.port = listener.addr.port;
    this.#accepting = this.#accept();
  }

  /** Starts a proxy to `127.0.0.1:targetPort` on a free port. */
  static start(targetPort: number): TcpProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new TcpProxy(listener, targetPort);
  }

  /** Base URL of the proxy. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Closes every open connection, both sides. */
  dropAll(): void {
    for (const pair of [...this.#pairs]) this.#closePair(pair);
  }

  /** Stops listening, closes every connection and waits for the pipes. */
  async close(): Promise<void> {
    this.#listener.close();
    this.dropAll();
    await this.#accepting;
    await Promise.all([...this.#tasks]);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.paused) {
          conn.close();
          continue;
        }
        const task = this.#serve(conn);
        this.#tasks.add(task);
        task.finally(() => this.#tasks.delete(task));
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    const pair: [Deno.Conn, Deno.Conn | undefined] = [client, undefined];
    this.#pairs.add(pair);
    try {
      pair[1] = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#targetPort,
      });
      if (!this.#pairs.has(pair)) {
        pair[1].close();
        return;
      }
      const upstream = copy(client, pair[1]).catch(() => {});
      const downstream = copy(pair[1], client).catch(() => {});
      await Promise.race([upstream, downstream]);
      this.#closePair(pair);
      await Promise.all([upstream, downstream]);
    } catch {
      // Either side closed or the target refused the connection.
    } finally {
      this.#closePair(pair);
    }
  }

  #closePair(pair: [Deno.Conn, Deno.Conn | undefined]): void {
    if (!this.#pairs.delete(pair)) return;
    for (const conn of pair) {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
    }
  }
}

async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  while (true) {
    const read = await from.read(buffer);
    if (read === null) return;
    let written = 0;
    while (written < read) {
      written += await to.write(buffer.subarray(written, read));
    }
  }
}
