/**
 * Hostile input over real WebSockets: malformed frames, floods and peers
 * that break the handshake. The instance must keep serving, keep its other
 * links and count every kind of bad frame.
 */

import assert from "node:assert/strict";
import { randomSecret } from "../lib/cli/keygen.ts";
import { CLOSE_CODES } from "../lib/protocol/messages.ts";
import { delay, TestFleet, type TestInstance } from "./helpers/process.ts";
import { RawPeer } from "./helpers/raw_peer.ts";

const MAX_FRAME_BYTES = 65_536;

function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/** One malformed frame of each kind, with the kind the instance counts. */
const MALFORMED: [string, () => string | Uint8Array<ArrayBuffer>][] = [
  ["invalid_json", () => '{"v":1,"type":"ping","seq":'],
  ["invalid_fields", () => '{"v":1,"type":"ping","seq":"one"}'],
  ["invalid_fields", () => '{"v":1,"type":"ping","seq":1e400}'],
  ["invalid_fields", () => `{"v":1,"type":"rumor","entries":${nested(5000)}}`],
  ["oversized", () => JSON.stringify({ pad: "x".repeat(MAX_FRAME_BYTES) })],
  ["unknown_type", () => '{"v":1,"type":"take_over","all":true}'],
  ["unsupported_version", () => '{"v":99,"type":"ping","seq":1}'],
  ["binary", () => crypto.getRandomValues(new Uint8Array(64))],
  ["invalid_fields", () => "[1,2,3]"],
];

async function waitForLinks(instance: TestInstance, count: number) {
  const deadline = Date.now() + 10_000;
  while ((await instance.status()).links.length < count) {
    if (Date.now() > deadline) throw new Error("the link did not come up");
    await delay(50);
  }
}

/**
 * Waits until the instance has counted a link rejection. The peer cannot
 * always see the close code: an instance that closes a socket with unread
 * data resets the connection, and Deno then reports code 0.
 */
async function waitForRejection(
  instance: TestInstance,
  reason: string,
  count: number,
): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const counters = (await instance.status()).counters;
    if (counter(counters, "links_rejected", `reason=${reason}`) >= count) {
      return;
    }
    await delay(50);
  }
  throw new Error(`no link was rejected for ${reason}`);
}

function counter(
  counters: Record<string, number>,
  name: string,
  labels: string,
): number {
  return counters[`${name}{${labels}}`] ?? 0;
}

Deno.test("10,000 malformed frames leave the instance serving", async () => {
  const keys = randomSecret();
  await using fleet = await TestFleet.start(2, {
    env: { GRAPEVINE_FLEET_KEYS: keys },
    flags: [
      "--max-frame-bytes",
      String(MAX_FRAME_BYTES),
      // One attacking link carries every frame, so each can be counted.
      "--max-invalid-frames",
      "100000",
      "--max-frames-per-second",
      "100000",
    ],
  });
  const [target, other] = fleet.instances as [TestInstance, TestInstance];
  await waitForLinks(other, 1);
  const linkBefore = (await other.status()).links[0];
  assert.ok(linkBefore, "the two instances are linked");
  const rssBefore = await target.rss();

  const attacker = await RawPeer.connect(target.url, { keys });
  const sent = new Map<string, number>();
  const total = 10_000;
  const started = performance.now();
  let writes = 0;
  for (let i = 0; i < total; i++) {
    const [kind, make] = MALFORMED[i % MALFORMED.length]!;
    attacker.send(make());
    sent.set(kind, (sent.get(kind) ?? 0) + 1);
    if (i % 1000 === 999) {
      // Reads and writes keep working in the middle of the flood.
      await target.client.put(`during.${writes}`, writes);
      assert.equal(
        (await target.client.get(`during.${writes}`))?.value,
        writes,
      );
      writes++;
      // Let the socket drain so the test does not buffer 10,000 frames.
      while (attacker.socket.bufferedAmount > 0) await delay(5);
    }
  }

  // Wait until the instance has counted every frame (bounded: 20 s).
  const deadline = Date.now() + 20_000;
  let counters: Record<string, number> = {};
  while (Date.now() < deadline) {
    counters = (await target.status()).counters;
    const counted = [...sent.keys()].reduce(
      (sum, kind) => sum + counter(counters, "invalid_frames", `kind=${kind}`),
      0,
    );
    if (counted >= total) break;
    await delay(100);
  }
  const elapsedMs = performance.now() - started;
  for (const [kind, count] of sent) {
    assert.equal(
      counter(counters, "invalid_frames", `kind=${kind}`),
      count,
      `every ${kind} frame is counted`,
    );
  }
  assert.ok(elapsedMs < 30_000, `the flood took ${elapsedMs.toFixed(0)} ms`);
  assert.equal(attacker.open, true, "the policy was raised for this test");
  await attacker.close();

  const rssAfter = await target.rss();
  assert.ok(
    rssAfter - rssBefore < 150 * 1024 * 1024,
    `memory grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB`,
  );
  const linkAfter = (await other.status()).links[0];
  assert.equal(linkAfter?.peer, linkBefore.peer, "the fleet link stayed up");
  assert.equal(linkAfter?.since, linkBefore.since, "and was never reopened");
  await fleet.waitConverged({ entries: writes });
});

Deno.test("link policies close abusive peers", async (t) => {
  const keys = randomSecret();
  await using fleet = await TestFleet.start(1, {
    env: { GRAPEVINE_FLEET_KEYS: keys },
    flags: ["--max-frame-bytes", String(MAX_FRAME_BYTES)],
  });
  const target = fleet.instances[0]!;

  await t.step("too many invalid frames", async () => {
    const peer = await RawPeer.connect(target.url, { keys });
    for (let i = 0; i < 150 && peer.open; i++) {
      peer.send('{"v":1,"type":"ping","seq":"bad"}');
      if (i % 20 === 19) await delay(10);
    }
    await peer.closed;
    await waitForRejection(target, "tooManyInvalidFrames", 1);
  });

  await t.step("frames of unknown type are tolerated", async () => {
    const peer = await RawPeer.connect(target.url, { keys });
    for (let i = 0; i < 300; i++) {
      peer.send('{"v":1,"type":"from_the_future"}');
      if (i % 50 === 49) await delay(20);
    }
    peer.send({ v: 1, type: "ping", seq: 7 });
    const deadline = Date.now() + 3000;
    while (
      !peer.received.some((frame) => frame.type === "pong") &&
      Date.now() < deadline
    ) {
      await delay(20);
    }
    assert.equal(peer.open, true);
    assert.ok(peer.received.some((frame) => frame.type === "pong"));
    await peer.close();
  });

  await t.step("frame flood", async () => {
    const peer = await RawPeer.connect(target.url, { keys });
    for (let i = 0; i < 3000 && peer.open; i++) {
      peer.send({ v: 1, type: "pong", seq: i });
    }
    await peer.closed;
    await waitForRejection(target, "rateLimited", 1);
  });

  await t.step("first frame other than auth", async () => {
    const peer = await RawPeer.connect(target.url, { keys, handshake: false });
    peer.send({
      v: 1,
      type: "hello",
      member: { id: "sneaky", region: "x", url: null, incarnation: 1 },
    });
    const closed = await peer.closed;
    assert.equal(closed.code, CLOSE_CODES.unauthorized);
  });

  await t.step("garbage before hello", async () => {
    const peer = await RawPeer.connect(target.url, { handshake: false, keys });
    await delay(100);
    const challenge = peer.received[0];
    assert.equal(challenge?.type, "auth");
    peer.send("not json at all");
    const closed = await peer.closed;
    assert.equal(closed.code, CLOSE_CODES.protocolError);
  });

  const counters = (await target.status()).counters;
  assert.equal(
    counter(counters, "links_rejected", "reason=tooManyInvalidFrames"),
    1,
  );
  assert.equal(counter(counters, "links_rejected", "reason=rateLimited"), 1);
  assert.equal(counter(counters, "links_rejected", "reason=unauthorized"), 1);
  assert.ok(target.logs.some((line) => line.includes("link closed by policy")));
  await target.client.put("still.serving", true);
  assert.equal((await target.client.get("still.serving"))?.value, true);
});

Deno.test("open links per address are limited", async () => {
  await using fleet = await TestFleet.start(1, {
    flags: ["--max-links-per-address", "2"],
  });
  const target = fleet.instances[0]!;
  const first = await RawPeer.connect(target.url);
  const second = await RawPeer.connect(target.url);
  await assert.rejects(
    RawPeer.connect(target.url),
    /Invalid status code: 429/,
  );
  await first.close();
  await delay(100);
  const third = await RawPeer.connect(target.url);
  await second.close();
  await third.close();
});

Deno.test("requests per address are rate limited", async () => {
  await using fleet = await TestFleet.start(1, {
    flags: ["--max-requests-per-second", "5"],
  });
  const target = fleet.instances[0]!;
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 30; i++) {
    const response = await fetch(`${target.url}/healthz`);
    await response.body?.cancel();
    statuses.push(response.status);
    if (response.status === 429) {
      retryAfter = response.headers.get("retry-after");
    }
  }
  assert.equal(statuses.filter((status) => status === 200).length >= 10, true);
  assert.ok(statuses.includes(429), "requests past the burst are rejected");
  assert.match(retryAfter ?? "", /^\d+$/);
  await delay(1200);
  const later = await fetch(`${target.url}/healthz`);
  await later.body?.cancel();
  assert.equal(later.status, 200, "tokens refill");
});
