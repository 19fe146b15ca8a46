// Settings that the simulator needs from the protocol core: a fixed share
// limit, the first push of a rumor at the next round, and one-way
// anti-entropy. Each keeps the old behaviour at its default.

import assert from "node:assert/strict";
import {
  defaultSettings,
  effectiveShareLimit,
  resolveSettings,
} from "../lib/config.ts";
import type { Entry } from "../lib/protocol/entry.ts";
import type { SyncRequest } from "../lib/protocol/messages.ts";
import { Replica } from "../lib/protocol/replica.ts";
import {
  answerSync,
  type SyncDirection,
  SyncSession,
} from "../lib/protocol/sync.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

const QUIET = { antiEntropyIntervalMs: 3_600_000 };

function star(size: number, overrides = {}): MemoryNet {
  const net = new MemoryNet();
  for (let i = 0; i < size; i++) net.add(`n${i}`, { ...QUIET, ...overrides });
  for (let i = 1; i < size; i++) net.link("n0", `n${i}`);
  net.deliver();
  return net;
}

function rumorShares(net: MemoryNet, id: string): number {
  return net.nodes.get(id)!.counters.total("rumor_shares");
}

Deno.test("new settings keep the old defaults", () => {
  const settings = defaultSettings();
  assert.equal(settings.rumorShareLimit, 0);
  assert.equal(settings.rumorFirstPush, "at_once");
  assert.equal(settings.antiEntropyMode, "push-pull");
  assert.equal(effectiveShareLimit(settings, 50), 8);
});

Deno.test("resolveSettings rejects unknown modes", () => {
  assert.throws(
    () => resolveSettings({ antiEntropyMode: "sideways" as "push" }),
    /antiEntropyMode/,
  );
  assert.throws(
    () => resolveSettings({ rumorFirstPush: "never" as "at_once" }),
    /rumorFirstPush/,
  );
  assert.throws(() => resolveSettings({ rumorShareLimit: -1 }), /rumorShare/);
});

Deno.test("rumorShareLimit fixes the share limit", () => {
  assert.equal(
    effectiveShareLimit({ rumorShareLimit: 2, retransmitMult: 4 }, 5000),
    2,
  );
  const net = star(8, { rumorShareLimit: 2, fanout: 1, feedbackLimit: 1000 });
  net.write("n0", "k", 1);
  net.run(2000);
  assert.equal(rumorShares(net, "n0"), 2);
});

Deno.test("share limit follows the fleet by default", () => {
  const net = star(8, { fanout: 1, feedbackLimit: 1000 });
  net.write("n0", "k", 1);
  net.run(5000);
  // 4 × ceil(log10(8 + 1)) = 4 pushes, bounded by the 7 links.
  assert.equal(rumorShares(net, "n0"), 4);
});

Deno.test("rumorFirstPush next_round waits for a tick", () => {
  const net = star(4, { rumorFirstPush: "next_round" });
  net.write("n0", "k", 1);
  net.deliver();
  assert.equal(rumorShares(net, "n0"), 0, "nothing pushed before the tick");
  assert.equal(net.nodes.get("n0")!.activeRumors, 1);
  net.run(100);
  assert.equal(rumorShares(net, "n0"), 3);
  for (const id of ["n1", "n2", "n3"]) {
    assert.equal(net.nodes.get(id)!.get("k")?.value, "1", id);
  }
});

Deno.test("rumorFirstPush at_once pushes on write", () => {
  const net = star(4);
  net.write("n0", "k", 1);
  assert.equal(rumorShares(net, "n0"), 3);
});

Deno.test("received rumor waits for next round", () => {
  const net = new MemoryNet();
  for (const id of ["a", "b", "c"]) {
    net.add(id, { ...QUIET, rumorFirstPush: "next_round" });
  }
  net.link("a", "b");
  net.link("b", "c");
  net.deliver();
  net.write("a", "k", 1);
  net.run(100);
  assert.equal(net.nodes.get("b")!.get("k")?.value, "1");
  assert.equal(net.nodes.get("c")!.get("k"), undefined, "b has not pushed");
  assert.equal(net.nodes.get("b")!.activeRumors, 1);
  net.run(100);
  assert.equal(net.nodes.get("c")!.get("k")?.value, "1");
});

function replicaWith(node: string, keys: string[]): Replica {
  const replica = new Replica();
  for (const [i, key] of keys.entries()) {
    replica.apply({ key, value: `${i}`, version: [1000 + i, 0, node] });
  }
  return replica;
}

function syncOneWay(
  initiator: Replica,
  responder: Replica,
  direction: SyncDirection,
): void {
  const limits = { maxEntries: 64, maxEntryBytes: 100_000, direction };
  const session = new SyncSession(initiator, limits);
  let request: SyncRequest | undefined = session.first();
  for (let step = 0; request && step < 100; step++) {
    for (const entry of request.push) responder.apply(entry);
    const response = answerSync(responder, request, limits);
    request = session.next(response, (entry: Entry) => initiator.apply(entry));
  }
  assert.equal(request, undefined, "session ended within 100 steps");
}

Deno.test("sync direction limits what moves", () => {
  const cases: [SyncDirection, boolean, boolean][] = [
    ["push-pull", true, true],
    ["push", false, true],
    ["pull", true, false],
  ];
  for (const [direction, initiatorGains, responderGains] of cases) {
    const initiator = replicaWith("a", ["a1", "a2"]);
    const responder = replicaWith("b", ["b1", "b2", "b3"]);
    syncOneWay(initiator, responder, direction);
    assert.equal(
      initiator.size === 5,
      initiatorGains,
      `${direction}: initiator`,
    );
    assert.equal(
      responder.size === 5,
      responderGains,
      `${direction}: responder`,
    );
  }
});

Deno.test("antiEntropyMode pull leaves the peer unchanged", () => {
  // Entries restored from a store carry no rumor, so only anti-entropy
  // can move them.
  const stateOf = (key: string, node: string) => ({
    entries: [{ key, value: "1", version: [999_000, 0, node] as const }],
    rumors: [],
    clock: undefined,
  });
  const net = new MemoryNet();
  net.add(
    "a",
    {
      antiEntropyIntervalMs: 200,
      antiEntropyJitter: 0,
      antiEntropyMode: "pull",
    },
    stateOf("from-a", "a"),
  );
  net.add("b", QUIET, stateOf("from-b", "b"));
  net.link("a", "b");
  net.deliver();
  net.run(1000);
  assert.equal(net.nodes.get("a")!.get("from-b")?.value, "1");
  assert.equal(net.nodes.get("b")!.get("from-a"), undefined);
});
