// Anti-entropy peer choice, HTTP fallback with backoff, and repairs spread
// as rumors, on the protocol core with a fake clock.

import assert from "node:assert/strict";
import { SyncTargets } from "../lib/protocol/sync_targets.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

Deno.test("SyncTargets picks uniformly over links and URLs", () => {
  let next = 0;
  const draws = [0, 0.3, 0.6, 0.9];
  const targets = new SyncTargets(
    { redialMinMs: 100, redialMaxMs: 1000, antiEntropyIntervalMs: 2000 },
    () => draws[next++ % draws.length]!,
  );
  const candidates = {
    linked: ["b", "c"],
    urls: ["http://d", "http://e", "http://d"],
    httpBusy: false,
  };
  const picks = draws.map(() => targets.choose(candidates, 0));
  assert.deepEqual(picks, [
    { via: "ws", peer: "b" },
    { via: "ws", peer: "c" },
    { via: "http", url: "http://d" },
    { via: "http", url: "http://e" },
  ]);
});

Deno.test("SyncTargets skips busy HTTP and backed-off URLs", () => {
  const targets = new SyncTargets(
    { redialMinMs: 100, redialMaxMs: 1000, antiEntropyIntervalMs: 2000 },
    () => 0.99,
  );
  const only = { linked: ["b"], urls: ["http://d"], httpBusy: true };
  assert.deepEqual(targets.choose(only, 0), { via: "ws", peer: "b" });

  const urls = { linked: [], urls: ["http://d"], httpBusy: false };
  targets.failed("http://d", 0);
  assert.equal(targets.choose(urls, 50), undefined, "inside the backoff");
  assert.deepEqual(targets.choose(urls, 100), {
    via: "http",
    url: "http://d",
  });
  for (let i = 0; i < 10; i++) targets.failed("http://d", 0);
  assert.equal(targets.failures("http://d"), 11);
  assert.ok(targets.nextAttemptMs("http://d") <= 1000, "capped at the max");
  assert.ok(targets.nextAttemptMs("http://d") >= 500, "at least half of it");

  // Four short anti-entropy intervals cap the backoff instead.
  const quick = new SyncTargets(
    { redialMinMs: 100, redialMaxMs: 1000, antiEntropyIntervalMs: 100 },
    () => 0.99,
  );
  for (let i = 0; i < 10; i++) quick.failed("http://d", 0);
  assert.ok(quick.nextAttemptMs("http://d") <= 400, "capped by the interval");
  targets.succeeded("http://d");
  assert.equal(targets.failures("http://d"), 0);
});

Deno.test("node without links syncs over HTTP and backs off", () => {
  const net = new MemoryNet();
  const settings = {
    antiEntropyIntervalMs: 500,
    redialMinMs: 200,
    redialMaxMs: 8000,
  };
  for (const id of ["a", "b", "c"]) net.add(id, settings);
  // a learns b and c through links that then close, as when sockets drop.
  net.link("a", "b");
  net.link("a", "c");
  net.deliver();
  net.unlink("a", "b");
  net.unlink("a", "c");
  net.httpBlocked = (_from, to) => to === "c";
  net.write("b", "k", "from-b");
  net.run(5000);

  const a = net.nodes.get("a")!;
  assert.equal(a.get("k")?.value, '"from-b"', "a pulled k over HTTP");
  const toB = net.httpSessions.filter((item) => item === "a>b:ok").length;
  const toC = net.httpSessions.filter((item) => item === "a>c:failed").length;
  assert.ok(toB >= 3, `${toB} sessions with b`);
  assert.ok(toC >= 1, "a tried c");
  assert.equal(
    a.counters.get("sync_sessions", { via: "http", result: "failed" }),
    toC,
  );
});

Deno.test("anti-entropy picks unlinked peers over HTTP", () => {
  const net = new MemoryNet();
  const settings = { antiEntropyIntervalMs: 500 };
  for (const id of ["a", "b", "c", "d"]) net.add(id, settings);
  net.link("a", "b");
  net.link("c", "d");
  net.link("b", "c"); // members frames make everyone known
  net.deliver();
  net.unlink("b", "c");
  net.write("a", "left", 1);
  net.write("d", "right", 2);
  net.run(3000);
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("left")?.value, "1", `${id} has left`);
    assert.equal(node.get("right")?.value, "2", `${id} has right`);
  }
  assert.ok(net.httpSessions.some((item) => item.endsWith(":ok")));
});

Deno.test("repairs after a heal spread as rumors", () => {
  const net = new MemoryNet();
  // Anti-entropy rarely, so that rumors must carry the repair.
  const settings = { antiEntropyIntervalMs: 60_000, antiEntropyJitter: 0 };
  const left = ["a1", "a2", "a3"];
  const right = ["b1", "b2", "b3"];
  for (const id of [...left, ...right]) net.add(id, settings);
  for (const side of [left, right]) {
    net.link(side[0]!, side[1]!);
    net.link(side[1]!, side[2]!);
    net.link(side[2]!, side[0]!);
  }
  net.deliver();
  net.write("a1", "shared", "left");
  net.now += 5;
  net.write("b1", "shared", "right");
  net.write("b2", "removed", "x");
  net.deliver();
  net.write("b3", "removed", null);
  net.run(1000);

  // Heal: one link across, and one session over it.
  net.link("a2", "b2");
  net.deliver();
  const a2 = net.nodes.get("a2")!;
  // Only a2 runs anti-entropy, until a round picks a peer across the cut.
  for (let round = 0; round < 20 && !a2.get("removed"); round++) {
    net.now += 60_000;
    a2.tick();
    net.deliver();
  }
  for (const [id, node] of net.nodes) {
    assert.equal(node.get("shared")?.value, '"right"', `${id} has the later`);
    assert.equal(node.get("removed")?.value ?? null, null, `${id} deleted`);
  }
  assert.ok(a2.counters.get("repairs_rumored") > 0);
});

Deno.test("antiEntropyRumorLimit 0 spreads no repairs", () => {
  const net = new MemoryNet();
  const settings = { antiEntropyIntervalMs: 500, antiEntropyRumorLimit: 0 };
  net.add("a", settings);
  net.add("b", settings);
  net.write("a", "k", 1);
  net.link("a", "b");
  net.deliver();
  net.run(2000);
  assert.equal(net.nodes.get("b")!.get("k")?.value, "1");
  for (const node of net.nodes.values()) {
    assert.equal(node.counters.get("repairs_rumored"), 0);
  }
});
