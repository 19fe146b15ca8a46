// The returning-instance rule of lib/protocol/quarantine.ts, on the
// protocol core with a fake clock: an instance away longer than the
// tombstone lifetime brings no deleted key back, keeps what the fleet still
// holds, and spreads what it holds newer.

import assert from "node:assert/strict";
import type { NodeState } from "../lib/protocol/node.ts";
import { Quarantine } from "../lib/protocol/quarantine.ts";
import { Replica } from "../lib/protocol/replica.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

const TTL_MS = 10_000;
const SETTINGS = { tombstoneTtlMs: TTL_MS, antiEntropyIntervalMs: 500 };

/** Two linked nodes a and b that agree on `kept` and `gone`. */
function fleet(): MemoryNet {
  const net = new MemoryNet();
  net.add("a", SETTINGS);
  net.add("b", SETTINGS);
  net.link("a", "b");
  net.deliver();
  net.write("a", "kept", 1);
  net.write("a", "gone", 2);
  net.run(1000);
  return net;
}

/** Returns the state a third node would load if it had stopped now. */
function savedState(net: MemoryNet, lastSyncMs: number | undefined) {
  const entries = [...net.nodes.get("a")!.replica.entries()];
  return { entries, rumors: [], clock: undefined, lastSyncMs } as NodeState;
}

/** Deletes `gone` and runs until every node has collected its tombstone. */
function deleteAndForget(net: MemoryNet): void {
  net.write("b", "gone", null);
  net.run(TTL_MS + 3000);
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("gone"), undefined, `${id} collected the tombstone`);
  }
}

function digests(net: MemoryNet): Set<string> {
  return new Set([...net.nodes.values()].map((node) => node.replica.digest()));
}

Deno.test("returning node brings no deleted key back", () => {
  const net = fleet();
  const state = savedState(net, net.now);
  deleteAndForget(net);

  const c = net.add("c", SETTINGS, state);
  net.link("c", "a");
  net.run(2000);

  for (const [id, node] of net.nodes) {
    assert.equal(node.get("gone"), undefined, `${id} has no gone`);
    assert.equal(node.get("kept")?.value, "1", `${id} has kept`);
  }
  assert.equal(c.quarantined, 0, "the quarantine ended");
  assert.equal(c.counters.get("entries_quarantined"), 2);
  assert.equal(
    c.counters.get("quarantine_settled", { outcome: "dropped" }),
    1,
    "gone was dropped",
  );
  assert.ok(
    net.persisted.get("c")!.some((op) =>
      op.type === "forget" && op.key === "gone"
    ),
    "gone was removed from c's store",
  );
  assert.equal(digests(net).size, 1);
});

Deno.test("node without a sync record is not protected", () => {
  // The control for the test above: the same return, but the node has no
  // record of its last session, so it offers gone and a pulls it back.
  const net = fleet();
  const state = savedState(net, undefined);
  deleteAndForget(net);

  net.add("c", SETTINGS, state);
  net.link("c", "a");
  net.run(2000);
  assert.equal(net.nodes.get("a")!.get("gone")?.value, "2");
});

Deno.test("quarantined entry newer than the fleet's spreads", () => {
  const net = fleet();
  // c wrote kept = 9 and stopped before it could spread it.
  const state = savedState(net, net.now);
  const entries = state.entries as { key: string; value: string | null }[];
  const stored = entries.find((entry) => entry.key === "kept")!;
  (state.entries as unknown[]).splice(entries.indexOf(stored), 1, {
    key: "kept",
    value: "9",
    version: [net.now, 0, "c"],
  });
  net.run(TTL_MS + 3000);

  const c = net.add("c", SETTINGS, state);
  net.link("c", "a");
  net.run(2000);
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("kept")?.value, "9", `${id} has c's write`);
  }
  // Both keys: kept by the newer write, gone by an equal copy.
  assert.equal(c.counters.get("quarantine_settled", { outcome: "kept" }), 2);
  assert.equal(c.counters.get("repairs_rumored"), 1, "c's write spread");
  assert.equal(digests(net).size, 1);
});

Deno.test("stale nodes drop nothing when none vouches", () => {
  const net = fleet();
  const state = savedState(net, net.now);
  net.run(TTL_MS + 3000);

  // Only c and d come back, both stale: neither may erase the other's keys.
  const c = net.add("c", SETTINGS, state);
  const d = net.add("d", SETTINGS, state);
  net.unlink("a", "b");
  net.nodes.delete("a");
  net.nodes.delete("b");
  net.link("c", "d");
  net.run(3000);
  assert.ok(c.counters.get("sync_sessions", { via: "ws", result: "ok" }) > 0);
  assert.equal(c.quarantined, 2);
  assert.equal(d.quarantined, 2);
  assert.equal(c.lastSyncMs, state.lastSyncMs, "c is still stale");
});

Deno.test("node away less than the lifetime keeps its entries", () => {
  const net = fleet();
  const state = savedState(net, net.now);
  net.run(TTL_MS / 2);
  const c = net.add("c", SETTINGS, state);
  net.link("c", "a");
  net.run(1000);
  assert.equal(c.counters.get("entries_quarantined"), 0);
  assert.equal(c.get("gone")?.value, "2");
});

Deno.test("running node cut off past the lifetime quarantines", () => {
  const net = fleet();
  net.add("c", SETTINGS);
  net.link("c", "a");
  net.run(1000);
  const c = net.nodes.get("c")!;
  assert.equal(c.get("gone")?.value, "2");

  net.unlink("c", "a");
  net.httpBlocked = (from, to) => from === "c" || to === "c";
  net.write("b", "gone", null);
  net.run(TTL_MS + 3000);
  assert.ok(c.counters.get("entries_quarantined") > 0, "c quarantined");
  assert.equal(c.get("gone"), undefined, "quarantined entries are not read");

  net.httpBlocked = () => false;
  net.link("c", "a");
  net.run(2000);
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("gone"), undefined, `${id} has no gone`);
    assert.equal(node.get("kept")?.value, "1", `${id} has kept`);
  }
  assert.equal(c.quarantined, 0);
});

Deno.test("Quarantine.enter moves only old entries", () => {
  const replica = new Replica();
  replica.apply({ key: "old", value: "1", version: [1_000, 0, "a"] });
  replica.apply({ key: "dead", value: null, version: [2_000, 0, "a"] });
  replica.apply({ key: "new", value: "2", version: [9_000, 0, "a"] });
  const quarantine = new Quarantine();
  assert.equal(quarantine.enter(replica, 5_000, 3), 2);
  assert.equal(replica.size, 1);
  assert.equal(quarantine.get("dead")?.value, null, "tombstones too");
  assert.equal(quarantine.endsWith(3), false, "sessions opened before");
  assert.equal(quarantine.endsWith(4), true, "sessions opened after");
  assert.equal(quarantine.take("old")?.value, "1");
  assert.equal(quarantine.drain().length, 1);
  assert.equal(quarantine.endsWith(4), false, "an empty quarantine");
});
