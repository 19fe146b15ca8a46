/**
 * A peer that connects and never reads: the instance must not queue data
 * for it without bound, and must close the link once its unsent data
 * passes `maxSendBufferBytes`.
 */

import assert from "node:assert/strict";
import { delay, TestFleet } from "./helpers/process.ts";

const encoder = new TextEncoder();

/** Encodes a masked WebSocket text frame, as a client must send it. */
function clientTextFrame(text: string): Uint8Array {
  const payload = encoder.encode(text);
  const length = payload.byteLength;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + length);
  frame[0] = 0x81;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    new DataView(frame.buffer).setUint16(2, length);
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, header);
  for (let i = 0; i < length; i++) {
    frame[header + 4 + i] = payload[i]! ^ mask[i % 4]!;
  }
  return frame;
}

/**
 * Opens `/gossip` over plain TCP, reads only the upgrade response, sends a
 * hello and then never reads again.
 */
async function stuckPeer(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const key = btoa(
    String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
  );
  await conn.write(encoder.encode(
    `GET /gossip HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const buffer = new Uint8Array(4096);
  const read = await conn.read(buffer);
  const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
  assert.match(head, /^HTTP\/1\.1 101/);
  const hello = {
    v: 1,
    type: "hello",
    member: { id: "stuck", region: "test", url: null, incarnation: 1 },
  };
  await conn.write(clientTextFrame(JSON.stringify(hello)));
  return conn;
}

Deno.test("peer that never reads is dropped", async () => {
  const limit = 1024 * 1024;
  await using fleet = await TestFleet.start(1, {
    flags: ["--max-send-buffer-bytes", String(limit)],
  });
  const instance = fleet.instances[0]!;
  const conn = await stuckPeer(instance.port);
  try {
    // Keep the link alive with pings, so only the send buffer can close it.
    let seq = 0;
    const pinger = setInterval(() => {
      conn.write(
        clientTextFrame(JSON.stringify({ v: 1, type: "ping", seq: seq++ })),
      )
        .catch(() => {});
    }, 300);
    try {
      const deadline = Date.now() + 5000;
      while ((await instance.status()).links.length === 0) {
        assert.ok(Date.now() < deadline, "the stuck peer's link came up");
        await delay(50);
      }
      const rssBefore = await instance.rss();

      // 30 batches of 12 values of 50 KB: 18 MB of rumors for the one link.
      const value = "x".repeat(50_000);
      let closedAfter = -1;
      for (let batch = 0; batch < 30; batch++) {
        const set: Record<string, string> = {};
        for (let i = 0; i < 12; i++) set[`big.${batch}.${i}`] = value;
        await instance.client.batch({ set });
        const status = await instance.status();
        if (status.counters["links_closed_slow"] === 1) {
          closedAfter = batch;
          break;
        }
      }
      assert.ok(closedAfter >= 0, "the link was closed for reading too slowly");
      assert.ok(
        (closedAfter + 1) * 12 * value.length > limit,
        "the link was not closed before it had the limit's worth of data to send",
      );
      const status = await instance.status();
      assert.equal(status.links.length, 0);
      assert.equal(status.counters["links_rejected{reason=slowConsumer}"], 1);
      assert.ok(
        instance.logs.some((line) => line.includes("Peer reads too slowly")),
      );
      const rssAfter = await instance.rss();
      assert.ok(
        rssAfter - rssBefore < 100 * 1024 * 1024,
        `memory grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB`,
      );
      // The instance keeps serving.
      await instance.client.put("after.stuck", 1);
      assert.equal((await instance.client.get("after.stuck"))?.value, 1);
    } finally {
      clearInterval(pinger);
    }
  } finally {
    conn.close();
  }
});
