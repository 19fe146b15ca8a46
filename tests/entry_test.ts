import assert from "node:assert/strict";
import {
  checkKey,
  checkValue,
  type Entry,
  hashEntry,
  supersedes,
} from "../lib/protocol/entry.ts";
import { Replica } from "../lib/protocol/replica.ts";

const limits = { maxKeyBytes: 32, maxValueBytes: 10 };

Deno.test("checkKey accepts the documented syntax", () => {
  for (const key of ["a", "features.checkout-v2", "routing/eu:api_1"]) {
    assert.equal(checkKey(key, limits), undefined, key);
  }
});

Deno.test("checkKey rejects bad keys with a reason", () => {
  assert.match(checkKey("", limits)!, /Key is empty/);
  assert.match(
    checkKey("x".repeat(33), limits)!,
    /33 bytes, more than the maximum of 32/,
  );
  assert.match(checkKey(".hidden", limits)!, /is invalid/);
  assert.match(checkKey("with space", limits)!, /is invalid/);
  assert.match(checkKey("ünïcode", limits)!, /is invalid/);
});

Deno.test("checkValue measures UTF-8 bytes", () => {
  assert.equal(checkValue('"abcdefgh"', limits), undefined);
  assert.match(
    checkValue('"ééééé"', limits)!,
    /12 bytes of JSON, more than the maximum of 10/,
  );
});

Deno.test("supersedes keeps the later version", () => {
  const older: Entry = { key: "k", value: "1", version: [1, 0, "a"] };
  const newer: Entry = { key: "k", value: "2", version: [1, 1, "a"] };
  assert.equal(supersedes(newer, older), true);
  assert.equal(supersedes(older, newer), false);
  assert.equal(supersedes(older, older), false);
  assert.equal(supersedes(older, undefined), true);
});

Deno.test("hashEntry differs by value, version and tombstone", () => {
  const base: Entry = { key: "k", value: "1", version: [1, 0, "a"] };
  const hex = (entry: Entry) => [...hashEntry(entry)].join(",");
  assert.notEqual(hex(base), hex({ ...base, value: "2" }));
  assert.notEqual(hex(base), hex({ ...base, version: [1, 1, "a"] }));
  assert.notEqual(hex(base), hex({ ...base, value: null }));
  assert.equal(hex(base), hex({ ...base }));
  assert.equal(hashEntry(base).length, 16);
});

Deno.test("Replica merge is order independent", () => {
  const entries: Entry[] = [
    { key: "a", value: "1", version: [1, 0, "x"] },
    { key: "a", value: "2", version: [2, 0, "y"] },
    { key: "b", value: null, version: [3, 0, "x"] },
    { key: "b", value: "9", version: [2, 5, "z"] },
    { key: "c", value: "3", version: [1, 0, "z"] },
  ];
  const forward = new Replica();
  const backward = new Replica();
  for (const entry of entries) forward.apply(entry);
  for (const entry of [...entries].reverse()) backward.apply(entry);
  assert.equal(forward.digest(), backward.digest());
  assert.equal(forward.get("a")?.value, "2");
  assert.equal(forward.get("b")?.value, null);
  assert.equal(forward.live, 2);
  assert.equal(forward.tombstones, 1);
});

Deno.test("Replica digest returns to empty after forget", () => {
  const replica = new Replica();
  replica.apply({ key: "a", value: null, version: [1, 0, "x"] });
  assert.notEqual(replica.digest(), "");
  replica.forget("a");
  assert.equal(replica.digest(), "");
  assert.equal(replica.tombstones, 0);
});
