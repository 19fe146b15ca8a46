import assert from "node:assert/strict";
import { WriteError } from "../lib/protocol/node.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

function ring(size: number, overrides = {}): MemoryNet {
  const net = new MemoryNet();
  for (let i = 0; i < size; i++) net.add(`n${i}`, overrides);
  for (let i = 0; i < size; i++) net.link(`n${i}`, `n${(i + 1) % size}`);
  net.deliver();
  return net;
}

Deno.test("GossipNode spreads a write to every node by rumor", () => {
  const net = ring(8, { antiEntropyIntervalMs: 3_600_000 });
  net.write("n0", "feature", { on: true });
  net.deliver();
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("feature")?.value, '{"on":true}', id);
  }
});

Deno.test("GossipNode persists entry and rumor on receipt", () => {
  const net = ring(3, { antiEntropyIntervalMs: 3_600_000 });
  net.write("n0", "k", 1);
  net.deliver();
  const ops = net.persisted.get("n1")!;
  assert.ok(ops.some((op) => op.type === "entry" && op.entry.key === "k"));
  assert.ok(ops.some((op) => op.type === "rumor" && op.rumor.key === "k"));
});

Deno.test("GossipNode drops duplicates and answers with feedback", () => {
  const net = new MemoryNet();
  for (const id of ["a", "b", "c"]) {
    net.add(id, { antiEntropyIntervalMs: 3_600_000 });
  }
  net.link("a", "b");
  net.link("b", "c");
  net.link("c", "a");
  net.deliver();
  net.write("a", "k", 1);
  net.deliver();
  net.run(2000);
  const applied = (id: string) =>
    net.events.get(id)!.filter((event) => event.type === "change").length;
  assert.equal(applied("b"), 1);
  assert.equal(applied("c"), 1);
  const feedback = [...net.received.values()].flat().filter((frame) =>
    frame.type === "feedback"
  );
  assert.ok(feedback.length > 0, "some node answered a duplicate");
  for (const node of net.nodes.values()) assert.equal(node.activeRumors, 0);
});

Deno.test("GossipNode repairs a missed update by anti-entropy", () => {
  const net = new MemoryNet();
  net.add("a", { antiEntropyIntervalMs: 500 });
  net.add("b", { antiEntropyIntervalMs: 500 });
  net.write("a", "k", "v");
  net.write("b", "other", "w");
  // No link yet, so no rumor could reach b; the rumors stay pending.
  net.link("a", "b");
  net.deliver();
  net.run(2000);
  assert.equal(net.nodes.get("b")!.get("k")?.value, '"v"');
  assert.equal(net.nodes.get("a")!.get("other")?.value, '"w"');
  assert.equal(
    net.nodes.get("a")!.replica.digest(),
    net.nodes.get("b")!.replica.digest(),
  );
});

Deno.test("GossipNode picks the same winner for concurrent writes", () => {
  const net = ring(4, { antiEntropyIntervalMs: 300 });
  net.write("n0", "k", "from-n0");
  net.write("n2", "k", "from-n2");
  net.deliver();
  net.run(3000);
  const values = new Set(
    [...net.nodes.values()].map((node) => node.get("k")?.value),
  );
  assert.equal(values.size, 1);
  // Same wall time and counter: the higher node id wins the tie.
  assert.deepEqual([...values], ['"from-n2"']);
});

Deno.test("GossipNode delete wins over the older value", () => {
  const net = ring(4, { antiEntropyIntervalMs: 300 });
  net.write("n0", "k", 1);
  net.deliver();
  net.now += 5;
  net.write("n3", "k", null);
  net.deliver();
  net.run(2000);
  for (const node of net.nodes.values()) {
    assert.equal(node.get("k")?.value, null);
    assert.equal(node.replica.live, 0);
  }
});

Deno.test("GossipNode rejects remote versions far in the future", () => {
  const net = ring(2, {
    maxClockDriftMs: 1000,
    antiEntropyIntervalMs: 3_600_000,
  });
  net.now += 0;
  const a = net.nodes.get("n0")!;
  // A node whose clock is an hour ahead writes.
  const skewed = net.add("skewed", { antiEntropyIntervalMs: 3_600_000 });
  const realNow = net.now;
  net.now = realNow + 3_600_000;
  const { entries } = skewed.stampWrite([{ key: "k", value: "1" }]);
  net.now = realNow;
  net.link("skewed", "n0");
  skewed.applyLocal(entries);
  net.deliver();
  assert.equal(a.get("k"), undefined);
  const rejected = net.events.get("n0")!.filter((event) =>
    event.type === "rejected"
  );
  assert.equal(rejected.length, 1);
  assert.equal(
    rejected[0]!.type === "rejected" && rejected[0]!.reason,
    "future_version",
  );
  assert.equal(
    a.counters.get("entries_rejected", { reason: "future_version" }),
    1,
  );
});

Deno.test("stampWrite rejects invalid input and stamps nothing", () => {
  const net = new MemoryNet();
  const node = net.add("a");
  const before = node.clock;
  assert.throws(
    () =>
      node.stampWrite([{ key: "ok", value: "1" }, {
        key: "bad key",
        value: "1",
      }]),
    (error: unknown) =>
      error instanceof WriteError && error.code === "invalid_key" &&
      error.key === "bad key",
  );
  assert.throws(
    () => node.stampWrite([{ key: "k", value: "{not json" }]),
    (error: unknown) =>
      error instanceof WriteError && error.code === "invalid_value",
  );
  assert.throws(
    () =>
      node.stampWrite([{
        key: "k",
        value: JSON.stringify("x".repeat(70_000)),
      }]),
    (error: unknown) =>
      error instanceof WriteError && error.code === "value_too_large",
  );
  assert.deepEqual(node.clock, before);
  assert.equal(node.replica.size, 0);
});

Deno.test("GossipNode restores entries, rumors and clock", () => {
  const net = new MemoryNet();
  const state = {
    entries: [{ key: "k", value: "1", version: [5_000_000, 3, "a"] as const }],
    rumors: [{
      key: "k",
      version: [5_000_000, 3, "a"] as const,
      sends: 1,
      duplicates: 0,
    }],
    clock: [5_000_000, 3, "a"] as const,
  };
  const node = net.add("a", {}, state);
  assert.equal(node.get("k")?.value, "1");
  assert.equal(node.activeRumors, 1);
  const { entries } = node.stampWrite([{ key: "x", value: "2" }]);
  assert.deepEqual(entries[0]!.version, [5_000_000, 4, "a"]);
});

Deno.test("GossipNode keeps one link per peer pair", () => {
  const net = new MemoryNet();
  net.add("a");
  net.add("b");
  net.link("a", "b");
  net.link("b", "a");
  net.deliver();
  assert.equal(net.nodes.get("a")!.links().length, 1);
  assert.equal(net.nodes.get("b")!.links().length, 1);
  // Both keep the link that the lower id dialled.
  assert.equal(net.nodes.get("a")!.links()[0]!.outbound, true);
  assert.equal(net.nodes.get("b")!.links()[0]!.outbound, false);
});

Deno.test("GossipNode collects expired tombstones", () => {
  const net = new MemoryNet();
  const node = net.add("a", { tombstoneTtlMs: 10_000 });
  net.write("a", "gone", null);
  assert.equal(node.replica.tombstones, 1);
  net.run(30_000, 1000);
  assert.equal(node.replica.tombstones, 0);
  assert.ok(
    net.persisted.get("a")!.some((op) =>
      op.type === "forget" && op.key === "gone"
    ),
  );
});

Deno.test("GossipNode refuses pushes older than the tombstone lifetime", () => {
  const net = new MemoryNet();
  const node = net.add("a", { tombstoneTtlMs: 10_000 });
  const old = {
    key: "zombie",
    value: "1",
    version: [net.now - 20_000, 0, "b"] as const,
  };
  node.handleSyncRequest({ nodes: [], want: [], push: [old] }, "b");
  assert.equal(node.get("zombie"), undefined);
  assert.equal(node.counters.get("entries_rejected", { reason: "expired" }), 1);
});

Deno.test("tree regrafts links when an eager link closes", () => {
  const net = new MemoryNet();
  for (const id of ["a", "b", "c"]) {
    net.add(id, { antiEntropyIntervalMs: 3_600_000, dissemination: "tree" });
  }
  net.link("a", "b");
  net.link("b", "c");
  net.link("c", "a");
  net.deliver();
  // The first update prunes the b-c link: both got it from a first.
  net.write("a", "first", 1);
  net.deliver();
  assert.ok(net.nodes.get("b")!.counters.get("links_pruned") >= 1);

  // Closing a-b cuts b off the tree; b grafts its link to c at once.
  net.unlink("a", "b");
  net.deliver();
  assert.equal(net.nodes.get("b")!.counters.get("links_regrafted"), 1);

  // So the next update reaches b through c with no lazy announcement.
  net.write("a", "second", 2);
  net.deliver();
  assert.equal(net.nodes.get("b")!.get("second")?.value, "2");
});
