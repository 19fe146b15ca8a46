import assert from "node:assert/strict";
import type { Entry } from "../lib/protocol/entry.ts";
import { Replica } from "../lib/protocol/replica.ts";
import { answerSync, SyncSession } from "../lib/protocol/sync.ts";
import type { SyncRequest } from "../lib/protocol/messages.ts";

const limits = { maxEntries: 256, maxEntryBytes: 500_000 };

function filled(count: number, node = "a"): Replica {
  const replica = new Replica();
  for (let i = 0; i < count; i++) {
    replica.apply({
      key: `key-${i}`,
      value: `${i}`,
      version: [1000 + i, 0, node],
    });
  }
  return replica;
}

/** Runs a session between two replicas in memory; returns bytes sent both ways. */
function sync(initiator: Replica, responder: Replica) {
  const session = new SyncSession(initiator, limits);
  let bytes = 0;
  let request: SyncRequest | undefined = session.first();
  while (request) {
    bytes += JSON.stringify(request).length;
    for (const entry of request.push) responder.apply(entry);
    const response = answerSync(responder, request, limits);
    bytes += JSON.stringify(response).length;
    request = session.next(response, (entry: Entry) => initiator.apply(entry));
  }
  return { bytes, stats: session.stats };
}

Deno.test("sync of equal replicas sends only the root", () => {
  const a = filled(1000);
  const b = filled(1000);
  const { bytes, stats } = sync(a, b);
  assert.equal(stats.rounds, 1);
  assert.equal(stats.pulled + stats.pushed, 0);
  assert.ok(bytes < 200, `${bytes} bytes`);
});

Deno.test("sync repairs both directions", () => {
  const a = filled(500);
  const b = filled(500);
  a.apply({ key: "key-3", value: "new-a", version: [9000, 0, "a"] });
  b.apply({ key: "key-7", value: "new-b", version: [9000, 0, "b"] });
  b.apply({ key: "only-b", value: "1", version: [9001, 0, "b"] });
  a.apply({ key: "key-9", value: null, version: [9002, 0, "a"] });
  const { stats } = sync(a, b);
  assert.equal(a.digest(), b.digest());
  assert.equal(b.get("key-3")?.value, "new-a");
  assert.equal(a.get("key-7")?.value, "new-b");
  assert.equal(a.get("only-b")?.value, "1");
  assert.equal(b.get("key-9")?.value, null);
  assert.equal(stats.pulled, 2);
  assert.equal(stats.pushed, 2);
});

Deno.test("sync settles two values under one version", () => {
  // Two instances that share an id stamp the same version on different
  // values; both replicas must end with the same one.
  const a = filled(500);
  const b = filled(500);
  a.apply({ key: "clash", value: '"from-a"', version: [9000, 0, "x"] });
  b.apply({ key: "clash", value: '"from-b"', version: [9000, 0, "x"] });
  a.apply({ key: "gone", value: '"kept"', version: [9001, 0, "x"] });
  b.apply({ key: "gone", value: null, version: [9001, 0, "x"] });
  assert.notEqual(a.digest(), b.digest());
  sync(a, b);
  assert.equal(a.digest(), b.digest());
  assert.equal(a.get("clash")?.value, '"from-b"');
  assert.equal(a.get("gone")?.value, null);
});

Deno.test("sync bytes grow with differences, not keys", () => {
  const sizes: number[] = [];
  for (const total of [1000, 10_000]) {
    const a = filled(total);
    const b = filled(total);
    b.apply({ key: "key-1", value: "changed", version: [99_999, 0, "b"] });
    sizes.push(sync(a, b).bytes);
  }
  assert.ok(
    sizes[1]! < sizes[0]! * 2,
    `1 difference: ${sizes.join(" vs ")} bytes`,
  );
});

Deno.test("sync fills an empty replica in several frames", () => {
  const a = new Replica();
  const b = filled(2000);
  const { stats } = sync(a, b);
  assert.equal(a.digest(), b.digest());
  assert.equal(stats.pulled, 2000);
  assert.ok(stats.rounds > 2000 / limits.maxEntries);
});

Deno.test("answerSync skips wanted entries over the byte budget", () => {
  const b = new Replica();
  for (let i = 0; i < 5; i++) {
    b.apply({
      key: `k${i}`,
      value: JSON.stringify("x".repeat(1000)),
      version: [1, i, "b"],
    });
  }
  const response = answerSync(b, {
    nodes: [],
    want: ["k0", "k1", "k2", "k3", "k4"],
    push: [],
  }, { maxEntries: 10, maxEntryBytes: 2500 });
  assert.equal(response.entries.length, 2);
  assert.deepEqual(response.skipped, ["k2", "k3", "k4"]);
});

Deno.test("sync splits leaf requests to fit the frame budget", () => {
  // 20,000 keys that differ everywhere: leaf listings of all 4,096 leaves
  // are far larger than the budget, so the session must ask in parts.
  const small = { maxEntries: 256, maxEntryBytes: 100_000 };
  const a = new Replica();
  const b = new Replica();
  for (let i = 0; i < 20_000; i++) {
    a.apply({ key: `key-${i}`, value: "1", version: [1000, 0, "a"] });
    b.apply({ key: `key-${i}`, value: "2", version: [2000, 0, "b"] });
  }
  const session = new SyncSession(a, small);
  let request: SyncRequest | undefined = session.first();
  let largest = 0;
  for (let round = 0; request && round < 10_000; round++) {
    const response = answerSync(b, request, small);
    largest = Math.max(largest, JSON.stringify(response).length);
    request = session.next(response, (entry: Entry) => a.apply(entry));
  }
  assert.equal(request, undefined, "the session finished");
  assert.equal(a.digest(), b.digest());
  assert.ok(
    largest < 2 * small.maxEntryBytes,
    `largest response ${largest} bytes`,
  );
});
