import assert from "node:assert/strict";
import { BroadcastQueue } from "../lib/protocol/broadcasts.ts";
import { MemberTable } from "../lib/protocol/membership.ts";
import type { MemberUpdate } from "../lib/protocol/messages.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

const self = { id: "a", region: "eu", url: "http://a.test", incarnation: 5 };
const b = (
  incarnation: number,
  state: MemberUpdate["state"],
): MemberUpdate => ({
  id: "b",
  region: "eu",
  url: "http://b.test",
  incarnation,
  state,
});

Deno.test("MemberTable orders news by incarnation, then state", () => {
  const cases: [MemberUpdate, MemberUpdate, string, string][] = [
    [b(1, "alive"), b(2, "alive"), "changed", "alive"],
    [b(2, "alive"), b(1, "alive"), "ignored", "alive"],
    [b(1, "alive"), b(1, "suspect"), "changed", "suspect"],
    [b(1, "suspect"), b(1, "alive"), "ignored", "suspect"],
    [b(1, "suspect"), b(2, "alive"), "changed", "alive"],
    [b(1, "suspect"), b(1, "dead"), "changed", "dead"],
    [b(1, "dead"), b(1, "alive"), "ignored", "dead"],
    [b(1, "dead"), b(1, "suspect"), "ignored", "dead"],
    [b(1, "dead"), b(2, "alive"), "changed", "alive"],
    [b(3, "alive"), b(2, "dead"), "ignored", "alive"],
    [b(1, "alive"), b(1, "left"), "changed", "left"],
  ];
  for (const [first, second, result, state] of cases) {
    const table = new MemberTable(self, 0);
    table.apply(first, 1);
    assert.equal(
      table.apply(second, 2),
      result,
      `${first.state}@${first.incarnation} then ${second.state}@${second.incarnation}`,
    );
    assert.equal(table.get("b")?.state, state);
  }
});

Deno.test("MemberTable refutes accusations about itself", () => {
  const table = new MemberTable(self, 0);
  assert.equal(table.apply({ ...self, state: "suspect" }, 1), "refuted");
  assert.equal(table.self.incarnation, 6);
  assert.equal(table.self.state, "alive");
  assert.equal(
    table.apply({ ...self, incarnation: 9, state: "dead" }, 2),
    "refuted",
  );
  assert.equal(table.self.incarnation, 10);
  assert.equal(
    table.apply({ ...self, incarnation: 3, state: "suspect" }, 3),
    "ignored",
    "old news",
  );
  assert.equal(
    table.apply({ ...self, incarnation: 99, state: "alive" }, 3),
    "ignored",
  );
});

Deno.test("MemberTable drops forged incarnations and extra members", () => {
  const now = 1_700_000_000_000;
  const table = new MemberTable({ ...self, incarnation: now }, now, 2);
  const forged = Number.MAX_SAFE_INTEGER;
  assert.equal(
    table.apply({ ...self, incarnation: forged, state: "dead" }, now),
    "future_incarnation",
  );
  assert.equal(table.self.incarnation, now, "no refutation was needed");
  assert.equal(table.apply(b(forged, "dead"), now), "future_incarnation");
  assert.equal(table.get("b"), undefined);

  assert.equal(table.apply(b(now, "alive"), now), "changed");
  const c = { ...b(now, "alive"), id: "c" };
  assert.equal(table.apply(c, now), "table_full");
  assert.equal(table.size, 2);
  assert.equal(table.apply(b(now + 1, "suspect"), now), "changed");
});

Deno.test("MemberTable forgets dead members after retention", () => {
  const table = new MemberTable(self, 0);
  table.apply(b(1, "dead"), 100);
  assert.deepEqual(table.prune(500, 1000), []);
  assert.deepEqual(table.prune(1100, 1000), ["b"]);
  assert.equal(table.get("b"), undefined);
});

Deno.test("BroadcastQueue replaces news about the same member", () => {
  const queue = new BroadcastQueue(10);
  queue.enqueue(b(1, "suspect"));
  queue.enqueue(b(2, "alive"));
  assert.equal(queue.size, 1);
  assert.deepEqual(queue.take(8, 3), [b(2, "alive")]);
});

Deno.test("BroadcastQueue sends least sent first, up to the limit", () => {
  const queue = new BroadcastQueue(10);
  queue.enqueue({ ...b(1, "alive"), id: "x" });
  assert.equal(queue.take(1, 2).length, 1);
  queue.enqueue({ ...b(1, "alive"), id: "y" });
  assert.deepEqual(queue.take(1, 2).map((update) => update.id), ["y"]);
  assert.deepEqual(queue.take(2, 2).map((update) => update.id).sort(), [
    "x",
    "y",
  ]);
  assert.equal(queue.size, 0);
});

function mesh(size: number, overrides = {}): MemoryNet {
  const net = new MemoryNet();
  const settings = {
    antiEntropyIntervalMs: 3_600_000,
    shuffleIntervalMs: 3_600_000,
    ...overrides,
  };
  for (let i = 0; i < size; i++) net.add(`n${i}`, settings);
  for (let i = 0; i < size; i++) {
    for (let j = i + 1; j < size; j++) net.link(`n${i}`, `n${j}`);
  }
  net.deliver();
  return net;
}

function state(net: MemoryNet, observer: string, member: string) {
  return net.nodes.get(observer)!.members.get(member)?.state;
}

Deno.test("SWIM declares a silent member dead", () => {
  const net = mesh(5);
  net.run(3000);
  net.down.add("n4");
  const timeout = net.nodes.get("n0")!.suspicionTimeoutMs;
  net.run(3000 + timeout + 3000);
  for (const id of ["n0", "n1", "n2", "n3"]) {
    assert.equal(state(net, id, "n4"), "dead", `${id} sees n4`);
    for (const other of ["n0", "n1", "n2", "n3"]) {
      assert.equal(state(net, id, other), "alive", `${id} sees ${other}`);
    }
  }
});

Deno.test("SWIM suspect refutes after a short pause", () => {
  const net = mesh(5, { suspicionMult: 6 });
  net.run(2000);
  net.down.add("n2");
  net.run(2500);
  const suspected = ["n0", "n1", "n3", "n4"].some((id) =>
    state(net, id, "n2") === "suspect"
  );
  assert.ok(suspected, "someone suspects the paused member");
  const before = net.nodes.get("n2")!.self.incarnation;
  net.down.delete("n2");
  net.run(8000);
  assert.ok(
    net.nodes.get("n2")!.self.incarnation > before,
    "the member raised its incarnation",
  );
  for (const id of ["n0", "n1", "n3", "n4"]) {
    assert.equal(state(net, id, "n2"), "alive", `${id} sees n2 alive again`);
  }
  const deaths = [...net.events.values()].flat().filter((event) =>
    event.type === "member" && event.id === "n2" && event.state === "dead"
  );
  assert.equal(deaths.length, 0, "nobody declared it dead");
});

Deno.test("SWIM spreads membership on existing frames", () => {
  const net = new MemoryNet();
  for (const id of ["a", "b", "c"]) {
    net.add(id, { antiEntropyIntervalMs: 3_600_000 });
  }
  net.link("a", "b");
  net.link("b", "c");
  net.deliver();
  net.run(2000);
  assert.equal(state(net, "a", "c"), "alive", "a learned of c through b");
  assert.equal(state(net, "c", "a"), "alive");
});

Deno.test("graceful leave marks the member left everywhere", () => {
  const net = mesh(4);
  net.run(1000);
  net.nodes.get("n3")!.leave();
  net.deliver();
  net.down.add("n3");
  net.run(2000);
  for (const id of ["n0", "n1", "n2"]) {
    assert.equal(state(net, id, "n3"), "left", id);
  }
});

Deno.test("overlay keeps most links inside the region", () => {
  const net = new MemoryNet();
  net.autoDial = true;
  const regions = ["eu", "us", "ap"];
  const settings = {
    antiEntropyIntervalMs: 3_600_000,
    shuffleIntervalMs: 500,
    seeds: ["http://eu-0.test"],
  };
  for (const region of regions) {
    for (let i = 0; i < 6; i++) {
      net.add(`${region}-${i}`, settings, undefined, region);
    }
  }
  net.run(20_000, 100);
  for (const [id, node] of net.nodes) {
    const region = id.split("-")[0];
    const links = node.links();
    const remote = links.filter((link) =>
      link.peer.split("-")[0] !== region
    ).length;
    assert.ok(links.length >= 3, `${id} has ${links.length} links`);
    assert.ok(remote >= 1, `${id} links to another region`);
    assert.ok(
      remote <= 2 + 1,
      `${id} keeps few cross-region links: ${remote} of ${links.length}`,
    );
  }
});

Deno.test("overlay ignores regions when awareness is off", () => {
  const net = new MemoryNet();
  net.autoDial = true;
  const settings = {
    antiEntropyIntervalMs: 3_600_000,
    regionAwareness: "off" as const,
    seeds: ["http://eu-0.test"],
  };
  for (const region of ["eu", "us", "ap"]) {
    for (let i = 0; i < 6; i++) {
      net.add(`${region}-${i}`, settings, undefined, region);
    }
  }
  net.run(10_000, 100);
  let remote = 0;
  let total = 0;
  for (const [id, node] of net.nodes) {
    const region = id.split("-")[0];
    for (const link of node.links()) {
      total++;
      if (link.peer.split("-")[0] !== region) remote++;
    }
  }
  assert.ok(remote / total > 0.4, `${remote} of ${total} links cross regions`);
});
