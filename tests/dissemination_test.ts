import assert from "node:assert/strict";
import { defaultSettings } from "../lib/config.ts";
import { Counters } from "../lib/protocol/counters.ts";
import { Dissemination } from "../lib/protocol/dissemination.ts";
import type { Frame } from "../lib/protocol/messages.ts";
import type { Overlay } from "../lib/protocol/overlay.ts";
import { Replica } from "../lib/protocol/replica.ts";
import { RumorBuffer } from "../lib/protocol/rumors.ts";
import { seededRandom } from "../lib/sim/random.ts";

/** Builds a tree dissemination with lazy links to `peers` and a log of its frames. */
function lazyNode(peers: string[], seed: number) {
  const settings = {
    ...defaultSettings("local"),
    dissemination: "tree" as const,
    regionAwareness: "off" as const,
    lazyPushFanout: 1,
  };
  const links = new Map(
    peers.map((peer, id) => [peer, { id, peer }]),
  );
  const overlay = {
    links,
    linkTo: (peer: string) => links.get(peer),
    sideOf: () => "local",
  } as unknown as Overlay;
  const sent: { peer: string; frame: Frame }[] = [];
  const dissemination = new Dissemination({
    settings,
    counters: new Counters(),
    overlay,
    rumors: new RumorBuffer({
      shareLimit: () => 4,
      feedbackLimit: 3,
      maxRumors: 100,
    }),
    replica: new Replica(),
    random: seededRandom(seed),
    send: (link, frame) => sent.push({ peer: peers[link]!, frame }),
    rumorRemoved: () => {},
  });
  for (const peer of peers) dissemination.prune(peer);
  return { dissemination, sent, interval: settings.lazyPushIntervalMs };
}

Deno.test("lazy announcements carry each peer's backlog", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const peers = ["b", "c", "d"];
    const { dissemination, sent, interval } = lazyNode(peers, seed);
    // Keys applied since each peer's last announcement.
    const owed = new Map(peers.map((peer) => [peer, new Set<string>()]));
    for (let round = 0; round < 12; round++) {
      const key = `k${round}`;
      dissemination.noteApplied({ key, value: "1", version: [round, 0, "a"] });
      for (const keys of owed.values()) keys.add(key);
      sent.length = 0;
      dissemination.lazyPush(round * interval);
      assert.equal(sent.length, 1, `round ${round} announces to one peer`);
      const { peer, frame } = sent[0]!;
      assert.equal(frame.type, "ihave");
      const items = frame.type === "ihave" ? frame.items : [];
      assert.deepEqual(
        new Set(items.map(([announced]) => announced)),
        owed.get(peer),
        `seed ${seed}, round ${round}: ${peer} hears every key it missed`,
      );
      owed.get(peer)!.clear();
    }
  }
});

Deno.test("lazy announcements go on for two quiet rounds", () => {
  const { dissemination, sent, interval } = lazyNode(["b", "c", "d", "e"], 1);
  dissemination.noteApplied({ key: "k", value: "1", version: [1, 0, "a"] });
  for (let round = 0; round < 6; round++) {
    dissemination.lazyPush(round * interval);
  }
  // The round with the update and two quiet rounds, each to a new peer.
  assert.equal(sent.length, 3);
  assert.equal(new Set(sent.map(({ peer }) => peer)).size, 3);
  for (const { frame } of sent) {
    assert.deepEqual(frame, {
      v: 1,
      type: "ihave",
      items: [["k", [1, 0, "a"]]],
    });
  }
});

Deno.test("regraft of a lazy link announces its backlog", () => {
  const { dissemination, sent } = lazyNode(["b", "c"], 1);
  dissemination.noteApplied({ key: "k", value: "1", version: [1, 0, "a"] });
  dissemination.receiveGraft(0, "b", { v: 1, type: "graft", keys: [] });
  assert.deepEqual(sent, [{
    peer: "b",
    frame: { v: 1, type: "ihave", items: [["k", [1, 0, "a"]]] },
  }]);

  // The link is eager now: a second graft has nothing to announce.
  sent.length = 0;
  dissemination.receiveGraft(0, "b", { v: 1, type: "graft", keys: [] });
  assert.deepEqual(sent, []);
});
