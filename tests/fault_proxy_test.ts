import assert from "node:assert/strict";
import { FaultProxy } from "../lib/chaos/fault_proxy.ts";
import { ProcessSources, socketInode } from "../lib/chaos/process_sources.ts";

/** Starts an echo server on a free port; `close()` stops it and its connections. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        tasks.push((async () => {
          const buffer = new Uint8Array(4096);
          try {
            while (true) {
              const read = await conn.read(buffer);
              if (read === null) break;
              await conn.write(buffer.subarray(0, read));
            }
          } catch {
            // Closed by the proxy.
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch {
              // Already closed.
            }
          }
        })());
      }
    } catch {
      // Listener closed.
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(tasks);
    },
  };
}

/** Sends `text` and reads the echo, or returns "closed" / "timeout". */
async function roundTrip(
  conn: Deno.Conn,
  text: string,
  timeoutMs = 1000,
): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  try {
    await conn.write(bytes);
  } catch {
    return "closed";
  }
  const buffer = new Uint8Array(bytes.length);
  let got = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    while (got < bytes.length) {
      const read = await Promise.race([
        conn.read(buffer.subarray(got)),
        timeout,
      ])
        .catch(() => null);
      if (read === "timeout") return "timeout";
      if (read === null) return "closed";
      got += read;
    }
    return new TextDecoder().decode(buffer);
  } finally {
    clearTimeout(timer);
  }
}

/** Returns a proxy that names `source()` as the source of every connection. */
function proxyFrom(source: () => string) {
  return new FaultProxy({ resolveSource: () => Promise.resolve(source()) });
}

Deno.test("FaultProxy forwards and delays in order", async () => {
  const echo = echoServer();
  const proxy = proxyFrom(() => "a");
  try {
    const route = proxy.route("b", echo.port);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(conn, "hello"), "hello");
    proxy.set("a", "b", { delayMs: 150 });
    const started = performance.now();
    assert.equal(await roundTrip(conn, "slow"), "slow");
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 140, `${elapsed} ms with a 150 ms delay`);
    // Jitter must not reorder the bytes of one connection.
    proxy.set("a", "b", { delayMs: 5, jitterMs: 50 });
    const bytes = new TextEncoder().encode("abcdefghij");
    for (const byte of bytes) await conn.write(Uint8Array.of(byte));
    const echoed = new Uint8Array(bytes.length);
    let got = 0;
    while (got < bytes.length) {
      got += (await conn.read(echoed.subarray(got))) ?? bytes.length;
    }
    assert.equal(new TextDecoder().decode(echoed), "abcdefghij");
    conn.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("FaultProxy cut closes and rejects", async () => {
  const echo = echoServer();
  const proxy = proxyFrom(() => "a");
  try {
    const route = proxy.route("b", echo.port);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(conn, "x"), "x");
    proxy.cut("a", "b");
    assert.equal(await roundTrip(conn, "y"), "closed");
    conn.close();
    const again = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(again, "z"), "closed");
    again.close();
    assert.ok(proxy.stats.rejected >= 1);
    proxy.heal();
    const healed = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(healed, "w"), "w");
    healed.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("FaultProxy drop hangs then closes", async () => {
  const echo = echoServer();
  const proxy = proxyFrom(() => "a");
  try {
    const route = proxy.route("b", echo.port);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    proxy.set("a", "b", { drop: true });
    assert.equal(await roundTrip(conn, "lost", 300), "timeout");
    assert.ok(proxy.stats.droppedBytes >= 4);
    proxy.heal();
    assert.equal(await roundTrip(conn, "after"), "closed", "the gap closes it");
    conn.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("FaultProxy partition cuts only across sides", async () => {
  const echo = echoServer();
  let source = "a";
  const proxy = proxyFrom(() => source);
  try {
    const routeB = proxy.route("b", echo.port);
    const routeC = proxy.route("c", echo.port);
    proxy.partition([["a", "b"], ["c"]]);
    const same = await Deno.connect({
      hostname: "127.0.0.1",
      port: routeB.port,
    });
    assert.equal(await roundTrip(same, "ab"), "ab", "same side");
    same.close();
    const across = await Deno.connect({
      hostname: "127.0.0.1",
      port: routeC.port,
    });
    assert.equal(await roundTrip(across, "ac"), "closed", "other side");
    across.close();
    source = "?";
    const unknown = await Deno.connect({
      hostname: "127.0.0.1",
      port: routeC.port,
    });
    assert.equal(await roundTrip(unknown, "?c"), "?c", "unknown source");
    unknown.close();
    assert.deepEqual(proxy.faultOf("c", "b"), { cut: true });
    assert.deepEqual(proxy.faultOf("b", "a"), {});
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("FaultProxy wildcard faults and retarget", async () => {
  const first = echoServer();
  const second = echoServer();
  const proxy = proxyFrom(() => "a");
  try {
    const route = proxy.route("b", first.port);
    proxy.set("*", "b", { delayMs: 10 });
    proxy.set("a", "*", { delayMs: 20 });
    assert.deepEqual(proxy.faultOf("a", "b"), { delayMs: 20 });
    assert.deepEqual(proxy.faultOf("c", "b"), { delayMs: 10 });
    proxy.clear("a", "*");
    assert.deepEqual(proxy.faultOf("a", "b"), { delayMs: 10 });
    proxy.retarget("b", second.port);
    await first.close();
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(conn, "moved"), "moved");
    conn.close();
  } finally {
    await proxy.close();
    await second.close();
  }
});

Deno.test(
  "ProcessSources finds the owning process",
  { ignore: !ProcessSources.supported() },
  async () => {
    const echo = echoServer();
    const sources = new ProcessSources();
    sources.register(Deno.pid, "self");
    const proxy = new FaultProxy({ resolveSource: sources.resolve });
    try {
      const route = proxy.route("b", echo.port);
      proxy.set("self", "b", { cut: true });
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: route.port,
      });
      assert.equal(await roundTrip(conn, "x"), "closed");
      conn.close();
      assert.equal(proxy.stats.rejected, 1, "the source was this process");
      assert.equal(await socketInode(1, 1), undefined);
    } finally {
      await proxy.close();
      await echo.close();
    }
  },
);

Deno.test("FaultProxy rejectWebSockets passes plain HTTP", async () => {
  const echo = echoServer();
  const proxy = proxyFrom(() => "a");
  try {
    const route = proxy.route("b", echo.port);
    const upgrade =
      "GET /gossip HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    const plain = "POST /v1/sync HTTP/1.1\r\nHost: b\r\n\r\n";
    const before = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(before, upgrade), upgrade, "no fault yet");
    proxy.set("*", "*", { rejectWebSockets: true });
    assert.equal(
      await roundTrip(before, "more"),
      "closed",
      "an open WebSocket connection is closed",
    );
    before.close();

    const socket = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(socket, upgrade), "closed");
    socket.close();
    const http = await Deno.connect({
      hostname: "127.0.0.1",
      port: route.port,
    });
    assert.equal(await roundTrip(http, plain), plain);
    http.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});
