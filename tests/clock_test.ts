import assert from "node:assert/strict";
import {
  ClockDriftError,
  compareVersions,
  formatVersion,
  HybridClock,
  parseVersion,
  type Version,
} from "../lib/protocol/clock.ts";

Deno.test("compareVersions orders by wall, counter, then node", () => {
  const cases: [Version, Version, number][] = [
    [[1, 0, "a"], [2, 0, "a"], -1],
    [[2, 0, "a"], [1, 9, "z"], 1],
    [[1, 1, "a"], [1, 2, "a"], -1],
    [[1, 1, "b"], [1, 1, "a"], 1],
    [[1, 1, "a"], [1, 1, "a"], 0],
  ];
  for (const [a, b, sign] of cases) {
    assert.equal(Math.sign(compareVersions(a, b)), sign, `${a} vs ${b}`);
  }
});

Deno.test("tick() increases within one millisecond", () => {
  const clock = new HybridClock("a", () => 1000);
  const first = clock.tick();
  const second = clock.tick();
  assert.deepEqual(first, [1000, 0, "a"]);
  assert.deepEqual(second, [1000, 1, "a"]);
});

Deno.test("tick() never goes back when wall time does", () => {
  let now = 5000;
  const clock = new HybridClock("a", () => now);
  const before = clock.tick();
  now = 1000;
  const after = clock.tick();
  assert.ok(compareVersions(after, before) > 0);
  assert.equal(after[0], 5000);
});

Deno.test("tick() borrows a millisecond when the counter is full", () => {
  const clock = new HybridClock("a", () => 1000);
  clock.restore([1000, 0xffff, "a"]);
  assert.deepEqual(clock.tick(), [1001, 0, "a"]);
});

Deno.test("observe() orders later local versions after remote ones", () => {
  const clock = new HybridClock("a", () => 1000, 60_000);
  clock.observe([30_000, 7, "b"]);
  const next = clock.tick();
  assert.ok(compareVersions(next, [30_000, 7, "b"]) > 0);
  assert.deepEqual(next, [30_000, 8, "a"]);
});

Deno.test("observe() rejects versions beyond the maximum drift", () => {
  const clock = new HybridClock("a", () => 1000, 500);
  assert.throws(
    () => clock.observe([2000, 0, "b"]),
    (error: unknown) =>
      error instanceof ClockDriftError && error.driftMs === 1000 &&
      /1000 ms ahead of local time, more than the maximum drift of 500 ms/
        .test(error.message),
  );
  assert.deepEqual(clock.last, [0, 0, "a"]);
});

Deno.test("restore() keeps a restarted clock above its past", () => {
  const clock = new HybridClock("a", () => 10);
  clock.restore([9_999, 3, "a"]);
  assert.deepEqual(clock.tick(), [9_999, 4, "a"]);
});

Deno.test("formatVersion() and parseVersion() round-trip", () => {
  const version: Version = [1733300000000, 12, "eu-west-1"];
  assert.deepEqual(parseVersion(formatVersion(version)), version);
  assert.equal(parseVersion("1.2"), undefined);
  assert.equal(parseVersion("1.99999.a"), undefined);
});
