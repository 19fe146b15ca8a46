import assert from "node:assert/strict";
import { RumorBuffer } from "../lib/protocol/rumors.ts";

function sequence(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length]!;
}

const peers = ["p1", "p2", "p3", "p4", "p5", "p6"];

Deno.test("RumorBuffer stops at the share limit", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 4,
    feedbackLimit: 10,
    maxRumors: 10,
  });
  buffer.add("k", [1, 0, "a"]);
  const first = buffer.plan(peers, 3, 10, sequence(0.5));
  assert.equal(first.pushes.size, 3);
  assert.equal(buffer.get("k")?.sends, 3);
  const second = buffer.plan(peers, 3, 10, sequence(0.5));
  assert.equal(second.pushes.size, 1);
  assert.equal(second.removed.get("k"), "share_limit");
  assert.equal(buffer.size, 0);
});

Deno.test("RumorBuffer never pushes to informed peers", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 100,
    feedbackLimit: 10,
    maxRumors: 10,
  });
  buffer.add("k", [1, 0, "a"], ["p1", "p2"]);
  const plan = buffer.plan(["p1", "p2", "p3"], 3, 10, Math.random);
  assert.deepEqual([...plan.pushes.keys()], ["p3"]);
  const next = buffer.plan(["p1", "p2", "p3"], 3, 10, Math.random);
  assert.equal(next.removed.get("k"), "all_informed");
});

Deno.test("RumorBuffer keeps rumors while there are no links", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 1,
    feedbackLimit: 1,
    maxRumors: 10,
  });
  buffer.add("k", [1, 0, "a"]);
  const plan = buffer.plan([], 3, 10, Math.random);
  assert.equal(plan.removed.size, 0);
  assert.equal(buffer.size, 1);
});

Deno.test("RumorBuffer removes a rumor after feedback", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 100,
    feedbackLimit: 2,
    maxRumors: 10,
  });
  buffer.add("k", [1, 0, "a"]);
  assert.equal(buffer.markInformed("k", [1, 0, "a"], "p1", true), undefined);
  assert.equal(
    buffer.markInformed("k", [9, 0, "a"], "p2", true),
    undefined,
    "other version",
  );
  assert.equal(buffer.markInformed("k", [1, 0, "a"], "p2", true), "feedback");
  assert.equal(buffer.size, 0);
});

Deno.test("RumorBuffer replaces older versions only", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 100,
    feedbackLimit: 2,
    maxRumors: 10,
  });
  buffer.add("k", [2, 0, "a"]);
  buffer.add("k", [1, 0, "a"]);
  assert.deepEqual(buffer.get("k")?.version, [2, 0, "a"]);
  buffer.add("k", [3, 0, "a"]);
  assert.deepEqual(buffer.get("k")?.version, [3, 0, "a"]);
  assert.equal(buffer.size, 1);
});

Deno.test("RumorBuffer drops the most shared when full", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 100,
    feedbackLimit: 2,
    maxRumors: 2,
  });
  buffer.add("a", [1, 0, "n"], [], { sends: 5, duplicates: 0 });
  buffer.add("b", [1, 0, "n"], [], { sends: 1, duplicates: 0 });
  const removed = buffer.add("c", [1, 0, "n"]);
  assert.equal(removed.get("a"), "overflow");
  assert.deepEqual([...buffer.values()].map((rumor) => rumor.key).sort(), [
    "b",
    "c",
  ]);
});

Deno.test("RumorBuffer sends the least shared first", () => {
  const buffer = new RumorBuffer({
    shareLimit: () => 100,
    feedbackLimit: 2,
    maxRumors: 10,
  });
  buffer.add("busy", [1, 0, "n"], [], { sends: 9, duplicates: 0 });
  buffer.add("fresh", [1, 0, "n"]);
  const plan = buffer.plan(["p1"], 1, 1, Math.random);
  assert.deepEqual(plan.pushes.get("p1")?.map((rumor) => rumor.key), ["fresh"]);
});
