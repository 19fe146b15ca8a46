import assert from "node:assert/strict";
import { EventQueue } from "../lib/sim/event_queue.ts";
import { SimNetwork } from "../lib/sim/network.ts";
import { sampleDistinct, seededRandom, streamSeed } from "../lib/sim/random.ts";
import { SIM_EPOCH_MS, Simulator } from "../lib/sim/simulator.ts";
import {
  DeliveryLog,
  paperModel,
  UPDATE_KEY,
  updateOnlyState,
} from "../lib/sim/experiments/common.ts";

Deno.test("EventQueue pops by time, then insertion order", () => {
  const queue = new EventQueue<string>();
  queue.push(30, "c");
  queue.push(10, "a1");
  queue.push(20, "b");
  queue.push(10, "a2");
  const order: string[] = [];
  for (let event = queue.pop(); event; event = queue.pop()) {
    order.push(event.item);
  }
  assert.deepEqual(order, ["a1", "a2", "b", "c"]);
  assert.equal(queue.peekTime(), Infinity);
});

Deno.test("seededRandom replays and streams differ", () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const first = [a(), a(), a()];
  assert.deepEqual([b(), b(), b()], first);
  for (const value of first) {
    assert.ok(value >= 0, `${value} below 0`);
    assert.ok(value < 1, `${value} not below 1`);
  }
  assert.notEqual(streamSeed(1, 0), streamSeed(1, 1));
  assert.notEqual(
    seededRandom(streamSeed(1, 0))(),
    seededRandom(streamSeed(1, 1))(),
  );
});

Deno.test("sampleDistinct excludes and never repeats", () => {
  const random = seededRandom(3);
  for (let trial = 0; trial < 50; trial++) {
    const picked = sampleDistinct(random, 6, 5, 2);
    assert.equal(new Set(picked).size, 5);
    assert.ok(!picked.includes(2));
  }
  assert.throws(() => sampleDistinct(random, 3, 3, 0), /Cannot pick 3/);
});

Deno.test("SimNetwork partitions and heals", () => {
  const network = new SimNetwork({}, seededRandom(1));
  network.partition([[0, 1], [2]]);
  assert.equal(network.reachable(0, 1), true);
  assert.equal(network.reachable(1, 2), false);
  assert.equal(network.reachable(3, 4), true, "unlisted nodes share a group");
  assert.equal(network.reachable(0, 3), false);
  network.heal();
  assert.equal(network.reachable(1, 2), true);
  assert.throws(
    () => new SimNetwork({ lossRate: 2 }, seededRandom(1)),
    /loss rate/,
  );
});

function rumorSim(seed: number, overrides = {}) {
  const sim = new Simulator({
    nodes: 200,
    seed,
    settings: paperModel({ feedbackLimit: 3 }),
    contactsFor: "rumor_holders",
    ...overrides,
  });
  const log = new DeliveryLog(sim);
  sim.write(0, UPDATE_KEY, "true");
  sim.runRounds(
    200,
    () => sim.nodes.every((node) => node.node.activeRumors === 0),
  );
  return { sim, log };
}

Deno.test("Simulator replays a run from its seed", () => {
  const first = rumorSim(9);
  const second = rumorSim(9);
  assert.deepEqual([...second.log.deliveredMs], [...first.log.deliveredMs]);
  assert.equal(second.sim.events, first.sim.events);
  assert.equal(
    second.sim.network.traffic.rumorEntries,
    first.sim.network.traffic.rumorEntries,
  );
  const other = rumorSim(10);
  assert.notDeepEqual([...other.log.deliveredMs], [...first.log.deliveredMs]);
});

Deno.test("Simulator frames pass the real parser", () => {
  const { log } = rumorSim(4, { validateFrames: true, nodes: 60 });
  assert.ok(log.count > 30, `rumor reached ${log.count} of 60`);
});

Deno.test("Simulator keeps a partition apart", () => {
  const sim = new Simulator({
    nodes: 40,
    seed: 2,
    settings: paperModel({ antiEntropyIntervalMs: 1000 }),
    state: (index) => index === 0 ? updateOnlyState() : undefined,
  });
  const half = Array.from({ length: 20 }, (_, index) => index);
  sim.network.partition([half]);
  sim.runRounds(30);
  for (const node of sim.nodes) {
    const has = node.node.get(UPDATE_KEY) !== undefined;
    assert.equal(has, node.index < 20, `node ${node.index}`);
  }
  assert.ok(sim.failedContacts > 0, "contacts across the cut failed");
  sim.network.heal();
  sim.runRounds(30);
  assert.ok(sim.nodes.every((node) => node.node.get(UPDATE_KEY)));
});

Deno.test("Simulator drops frames at the loss rate", () => {
  const lossless = rumorSim(5).sim.network.traffic;
  const lossy = rumorSim(5, { network: { lossRate: 0.3 } }).sim.network.traffic;
  assert.equal(lossless.dropped.get("loss") ?? 0, 0);
  const sent = [...lossy.framesByType.entries()]
    .filter(([type]) => type !== "members")
    .reduce((sum, [, count]) => sum + count, 0);
  const lost = lossy.dropped.get("loss") ?? 0;
  assert.ok(lost > 0.2 * sent, `${lost} of ${sent} lost`);
  assert.ok(lost < 0.4 * sent, `${lost} of ${sent} lost`);
});

Deno.test("Simulator delays frames by the latency", () => {
  const sim = new Simulator({
    nodes: 2,
    seed: 1,
    settings: paperModel({ fanout: 1 }),
    network: { latencyMs: 40, jitterMs: 0 },
  });
  const log = new DeliveryLog(sim);
  sim.write(0, UPDATE_KEY, "true");
  sim.runRound();
  assert.equal(log.deliveredMs[1], SIM_EPOCH_MS + 1000 + 40);
});

Deno.test("stopped node restarts from its store", async () => {
  const sim = new Simulator({
    nodes: 30,
    seed: 3,
    settings: paperModel({ antiEntropyIntervalMs: 1000 }),
  });
  sim.write(5, "kept", "1");
  sim.stopNode(5);
  assert.equal(sim.nodes[5]!.online, false);
  assert.throws(() => sim.nodes[5]!.node, /n5 is stopped/);
  sim.write(0, UPDATE_KEY, "true");
  sim.runRounds(20);
  assert.equal(sim.onlineCount, 29);
  await sim.startNode(5);
  assert.equal(
    sim.nodes[5]!.node.get("kept")?.value,
    "1",
    "restored from store",
  );
  sim.runRounds(20);
  assert.equal(sim.nodes[5]!.node.get(UPDATE_KEY)?.value, "true");
});

Deno.test("node without links syncs over HTTP", () => {
  // Only rumor holders open links, so anti-entropy has no link to use and
  // the node falls back to an HTTP session with a member in its table.
  const sim = new Simulator({
    nodes: 10,
    seed: 8,
    contactsFor: "rumor_holders",
    settings: paperModel({ antiEntropyIntervalMs: 1000 }),
    state: (index) => index === 0 ? updateOnlyState() : undefined,
  });
  let httpSessions = 0;
  sim.on((_node, event) => {
    if (event.type === "sync_done" && event.via === "http" && event.ok) {
      httpSessions++;
    }
  });
  // Node 1 learns of node 0 from one link, as a members frame would tell it.
  sim.nodes[1]!.node.members.apply(
    { ...sim.nodes[0]!.info, state: "alive" },
    sim.nowMs,
  );
  sim.runRounds(3);
  assert.ok(httpSessions > 0, "some HTTP session finished");
  assert.equal(sim.nodes[1]!.node.get(UPDATE_KEY)?.value, "true");
});

Deno.test("Simulator rejects invalid options", () => {
  assert.throws(() => new Simulator({ nodes: 1, seed: 1 }), /at least 2 nodes/);
  assert.throws(
    () => new Simulator({ nodes: 5, seed: 1, contacts: 5 }),
    /contact count 5/,
  );
  const sim = new Simulator({ nodes: 3, seed: 1 });
  assert.throws(() => sim.write(7, "k", "1"), /node index 7/);
});
