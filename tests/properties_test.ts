/**
 * Property tests (fast-check): merge is a join (commutative, associative,
 * idempotent) and the frame parser never throws, whatever its input.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { Version } from "../lib/protocol/clock.ts";
import type { Entry } from "../lib/protocol/entry.ts";
import { parseFrame } from "../lib/protocol/messages.ts";
import { Replica } from "../lib/protocol/replica.ts";
import { MemoryNet } from "./helpers/memory_net.ts";

const NOW = 1_000_000;

const versionArb: fc.Arbitrary<Version> = fc.tuple(
  fc.integer({ min: NOW - 5_000, max: NOW + 5_000 }),
  fc.integer({ min: 0, max: 3 }),
  fc.constantFrom("a", "b", "c"),
);

/** Entries over few keys and versions, so that collisions are common. */
const entryArb: fc.Arbitrary<Entry> = fc.record({
  key: fc.constantFrom("k1", "k2", "k3", "features.x"),
  value: fc.option(fc.json({ maxDepth: 2 }), { nil: null }),
  version: versionArb,
});

/**
 * Two entries with the same key and version but different values cannot
 * come from one writer; drop such pairs so that the laws apply.
 */
function consistent(entries: Entry[]): Entry[] {
  const seen = new Map<string, Entry>();
  for (const entry of entries) {
    const id = `${entry.key}@${entry.version.join(".")}`;
    if (!seen.has(id)) seen.set(id, entry);
  }
  return [...seen.values()];
}

const setArb = fc.array(entryArb, { maxLength: 30 });

function merged(...sets: Entry[][]): Replica {
  const replica = new Replica();
  for (const set of sets) for (const entry of set) replica.apply(entry);
  return replica;
}

/** The state of a replica as comparable data: entries sorted by key. */
function state(replica: Replica): Entry[] {
  return [...replica.entries()].sort((a, b) => a.key < b.key ? -1 : 1);
}

Deno.test("merge is commutative", () => {
  fc.assert(
    fc.property(setArb, setArb, (a, b) => {
      const all = consistent([...a, ...b]);
      const left = all.filter((entry) => a.includes(entry));
      const right = all.filter((entry) => !a.includes(entry));
      const ab = merged(left, right);
      const ba = merged(right, left);
      assert.deepEqual(state(ab), state(ba));
      assert.equal(ab.digest(), ba.digest());
    }),
    { numRuns: 300 },
  );
});

Deno.test("merge is associative", () => {
  fc.assert(
    fc.property(setArb, setArb, setArb, (a, b, c) => {
      const all = consistent([...a, ...b, ...c]);
      const [x, y, z] = [
        all.filter((entry) => a.includes(entry)),
        all.filter((entry) => b.includes(entry) && !a.includes(entry)),
        all.filter((entry) => !a.includes(entry) && !b.includes(entry)),
      ];
      // (x ⊔ y) ⊔ z against x ⊔ (y ⊔ z): merge the inner pair's result.
      const leftInner = state(merged(x, y));
      const rightInner = state(merged(y, z));
      const left = merged(leftInner, z);
      const right = merged(x, rightInner);
      assert.deepEqual(state(left), state(right));
      assert.equal(left.digest(), right.digest());
    }),
    { numRuns: 300 },
  );
});

Deno.test("merge is idempotent", () => {
  fc.assert(
    fc.property(setArb, (a) => {
      const set = consistent(a);
      const once = merged(set);
      const twice = merged(set, set);
      const withItself = merged(set, state(once));
      assert.deepEqual(state(twice), state(once));
      assert.deepEqual(state(withItself), state(once));
      assert.equal(twice.digest(), once.digest());
    }),
    { numRuns: 300 },
  );
});

Deno.test("gossip nodes agree whatever the delivery order", () => {
  fc.assert(
    fc.property(
      fc.array(entryArb, { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (raw, seed) => {
        const entries = consistent(raw).map((entry) => ({
          ...entry,
          value: entry.value === null ? null : JSON.stringify(entry.value),
        }));
        // A second copy of every entry, then a seeded shuffle of the lot.
        const shuffled = [...entries, ...entries];
        let state = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          state = (state * 1103515245 + 12345) % 2147483648;
          const j = state % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const net = new MemoryNet();
        net.now = NOW;
        const inOrder = net.add("p");
        const outOfOrder = net.add("q");
        inOrder.handleSyncRequest(
          { nodes: [], want: [], push: entries },
          "x",
        );
        outOfOrder.handleSyncRequest(
          { nodes: [], want: [], push: shuffled },
          "x",
        );
        assert.equal(
          outOfOrder.replica.digest(),
          inOrder.replica.digest(),
        );
      },
    ),
    { numRuns: 200 },
  );
});

const MAX_BYTES = 64 * 1024;

function assertParses(input: unknown): void {
  const result = parseFrame(input, MAX_BYTES);
  assert.equal(typeof result.ok, "boolean");
  if (!result.ok) {
    assert.equal(typeof result.kind, "string");
    assert.equal(typeof result.message, "string");
  }
}

Deno.test("parseFrame never throws on any value", () => {
  fc.assert(fc.property(fc.anything(), assertParses), { numRuns: 2000 });
});

Deno.test("parseFrame never throws on any text", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.string(), fc.string({ unit: "binary" })),
      assertParses,
    ),
    { numRuns: 2000 },
  );
  fc.assert(fc.property(fc.json(), assertParses), { numRuns: 2000 });
});

/** Frames close to valid ones: a valid frame with one field replaced. */
Deno.test("parseFrame never throws on mutated frames", () => {
  const valid = [
    { v: 1, type: "ping", seq: 1 },
    {
      v: 1,
      type: "rumor",
      entries: [{ key: "k", value: "1", version: [NOW, 0, "a"] }],
    },
    {
      v: 1,
      type: "hello",
      member: { id: "a", region: "r", url: "http://a.test", incarnation: 1 },
    },
    {
      v: 1,
      type: "sync_request",
      rid: 1,
      body: { nodes: [["", "0".repeat(32)]], want: ["k"], push: [] },
    },
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...valid),
      fc.string({ maxLength: 10 }),
      fc.anything(),
      (frame, field, value) => {
        const mutated: Record<string, unknown> = structuredClone(frame);
        mutated[field] = value;
        let text: string;
        try {
          text = JSON.stringify(mutated);
        } catch {
          return; // BigInt and the like have no JSON form.
        }
        assertParses(text);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("parseFrame rejects deep nesting and huge numbers", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const result = parseFrame(`{"v":1,"type":"ping","seq":${deep}}`, 1 << 20);
  assert.equal(result.ok, false);
  const huge = parseFrame('{"v":1,"type":"ping","seq":1e400}', MAX_BYTES);
  assert.equal(huge.ok, false);
  assert.equal(!huge.ok && huge.kind, "invalid_fields");
  const negative = parseFrame('{"v":1,"type":"ping","seq":-1}', MAX_BYTES);
  assert.equal(negative.ok, false);
});
