import assert from "node:assert/strict";
import type { Entry } from "../lib/protocol/entry.ts";
import type { FrameOf, MemberUpdate } from "../lib/protocol/messages.ts";
import { mergeRumorFrames } from "../lib/net/rumor_batch.ts";

const limits = { maxEntriesPerFrame: 256, maxEntryBytes: 512 * 1024 };

function entry(key: string, wall = 1, value = '"v"'): Entry {
  return { key, value, version: [wall, 0, "n1"] };
}

function rumor(entries: Entry[], updates?: MemberUpdate[]): FrameOf<"rumor"> {
  return updates
    ? { v: 1, type: "rumor", entries, updates }
    : { v: 1, type: "rumor", entries };
}

function update(id: string): MemberUpdate {
  return { id, region: "r", url: null, incarnation: 1, state: "alive" };
}

Deno.test("merge joins frames in order", () => {
  const merged = mergeRumorFrames(
    [rumor([entry("a")]), rumor([entry("b")]), rumor([entry("c")])],
    limits,
  );
  assert.equal(merged.length, 1);
  assert.deepEqual(merged[0]!.entries.map((item) => item.key), [
    "a",
    "b",
    "c",
  ]);
});

Deno.test("merge keeps the newest version of a key", () => {
  const merged = mergeRumorFrames(
    [rumor([entry("a", 2)]), rumor([entry("a", 1)]), rumor([entry("a", 3)])],
    limits,
  );
  assert.equal(merged.length, 1);
  assert.equal(merged[0]!.entries.length, 1);
  assert.equal(merged[0]!.entries[0]!.version[0], 3);
});

Deno.test("merge splits at the entry limit", () => {
  const frames = Array.from({ length: 10 }, (_, i) => rumor([entry(`k${i}`)]));
  const merged = mergeRumorFrames(frames, { ...limits, maxEntriesPerFrame: 4 });
  assert.deepEqual(merged.map((frame) => frame.entries.length), [4, 4, 2]);
});

Deno.test("merge splits at the byte limit", () => {
  const big = '"' + "x".repeat(1000) + '"';
  const frames = Array.from(
    { length: 5 },
    (_, i) => rumor([entry(`k${i}`, 1, big)]),
  );
  const merged = mergeRumorFrames(frames, { ...limits, maxEntryBytes: 2500 });
  assert.deepEqual(merged.map((frame) => frame.entries.length), [2, 2, 1]);
});

Deno.test("merge keeps every membership update", () => {
  const frames = Array.from(
    { length: 6 },
    (_, i) =>
      rumor(
        [entry(`k${i}`)],
        Array.from({ length: 16 }, (_, j) => update(`m${i}-${j}`)),
      ),
  );
  const merged = mergeRumorFrames(frames, limits);
  const updates = merged.flatMap((frame) => frame.updates ?? []);
  assert.equal(updates.length, 96);
  for (const frame of merged) {
    assert.ok((frame.updates?.length ?? 0) <= 64);
  }
  assert.equal(merged.flatMap((frame) => frame.entries).length, 6);
});
