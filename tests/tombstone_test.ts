// Tombstone lifetime and the returning-instance rule, on real instances
// with a tombstone lifetime of a few seconds.

import assert from "node:assert/strict";
import { counter, delay, waitFor, withFleet } from "./helpers/chaos.ts";

const TTL_MS = 4000;
const FLAGS = [
  "--tombstone-ttl-ms",
  String(TTL_MS),
  "--anti-entropy-interval-ms",
  "500",
];

Deno.test("tombstones are collected after their lifetime", async () => {
  await withFleet({ size: 2, flags: FLAGS }, async (fleet) => {
    const [n1, n2] = fleet.instances;
    await n1!.client.put("short.lived", 1);
    await n1!.client.delete("short.lived");
    await fleet.waitConverged();
    assert.equal((await n2!.status()).tombstones, 1, "kept at first");
    await waitFor(
      async () => {
        const reports = await fleet.statuses();
        return reports.every((report) => report.tombstones === 0);
      },
      "every instance collected the tombstone",
      3 * TTL_MS,
    );
    const report = await n2!.status();
    assert.equal(counter(report, "tombstones_collected"), 1);
    await fleet.waitConverged();
  });
});

Deno.test("instance away past the lifetime resurrects nothing", async () => {
  await withFleet({ size: 3, flags: FLAGS }, async (fleet) => {
    const [n1, n2, n3] = fleet.instances;
    const written = Date.now();
    await n1!.client.put("doomed", "old");
    await n1!.client.put("survivor", "old");
    await fleet.waitConverged();
    // The rule needs n3 to have a recorded session with a peer that vouches.
    await waitFor(async () => {
      const lastSync = (await n3!.status()).last_sync;
      return lastSync !== null && Date.parse(lastSync) > written;
    }, "n3 completed a vouched session");

    await fleet.kill("n3");
    await n1!.client.delete("doomed");
    await n2!.client.put("changed.while.away", 1);
    await waitFor(
      async () => {
        const reports = await fleet.statuses();
        return reports.every((report) =>
          report.tombstones === 0 && report.entries === 2
        );
      },
      "n1 and n2 collected the tombstone",
      3 * TTL_MS,
    );
    // n3 has now been away for longer than the lifetime.

    await fleet.restart("n3");
    await fleet.waitConverged({ timeoutMs: 15_000 });
    for (const instance of fleet.instances) {
      assert.equal(
        await instance.client.get("doomed"),
        undefined,
        instance.name,
      );
      const survivor = await instance.client.get("survivor");
      assert.equal(survivor?.value, "old", instance.name);
      const changed = await instance.client.get("changed.while.away");
      assert.equal(changed?.value, 1, instance.name);
    }
    const report = await n3!.status();
    assert.ok(counter(report, "entries_quarantined") >= 2, "n3 quarantined");
    assert.equal(
      counter(report, "quarantine_settled", { outcome: "dropped" }),
      1,
      "doomed was dropped",
    );
    assert.equal(report.quarantined, 0, "the quarantine ended");
    assert.ok(
      n3!.logs.some((line) => line.includes("old entries quarantined")),
      "n3 logged the quarantine",
    );

    // A second look a few intervals later: still gone everywhere.
    await delay(1500);
    for (const instance of fleet.instances) {
      assert.equal(
        await instance.client.get("doomed"),
        undefined,
        instance.name,
      );
    }
  });
});

Deno.test("instance back within the lifetime keeps its entries", async () => {
  await withFleet({ size: 2, flags: FLAGS }, async (fleet) => {
    const [n1, n2] = fleet.instances;
    await n1!.client.put("stays", 1);
    await fleet.waitConverged();
    await delay(1500); // a last-sync time is written at most once a second
    await fleet.kill("n2");
    await fleet.restart("n2");
    await fleet.waitConverged();
    const report = await n2!.status();
    assert.equal(counter(report, "entries_quarantined"), 0);
    assert.equal((await n2!.client.get("stays"))?.value, 1);
  });
});
