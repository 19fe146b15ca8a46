// The chaos suite in its short form: real instances on 127.0.0.1 whose
// peer traffic passes the fault proxy, under partitions, SIGKILLs and
// clients writing and deleting. `deno task chaos` runs the random part for
// longer.

import assert from "node:assert/strict";
import {
  checkHistory,
  type FinalEntry,
  History,
} from "../lib/chaos/history.ts";
import { formatReport, passed, runChaos } from "../lib/chaos/run.ts";
import { compareVersions, parseVersion } from "../lib/protocol/clock.ts";
import { counter, delay, waitFor, withFleet } from "./helpers/chaos.ts";

const INTERVAL_MS = 1000;
const FLAGS = ["--anti-entropy-interval-ms", String(INTERVAL_MS)];

/** Whether version text `a` orders after `b`. */
function later(a: string, b: string): boolean {
  return compareVersions(parseVersion(a)!, parseVersion(b)!) > 0;
}

Deno.test("split fleet heals within two intervals", async () => {
  await withFleet({ size: 6, flags: FLAGS }, async (fleet) => {
    const [n1, n2, , n4] = fleet.instances;
    await n1!.client.put("split.same", "before");
    await n1!.client.put("split.deleted", "doomed");
    await fleet.waitConverged();

    const left = ["n1", "n2", "n3"];
    const right = ["n4", "n5", "n6"];
    fleet.proxy.partition([left, right]);
    const leftWrite = await n1!.client.put("split.same", "left");
    await delay(5);
    const rightWrite = await n4!.client.put("split.same", "right");
    await n2!.client.delete("split.deleted");
    await n4!.client.put("split.right-only", 1);
    const sides = [left, right].map((side) => side.map((id) => fleet.get(id)));
    for (const side of sides) await fleet.waitConverged({ instances: side });
    // Long enough for anti-entropy across the cut to fail a few times.
    await delay(3 * INTERVAL_MS);
    const split = await fleet.statuses();
    assert.equal(new Set(split.map((report) => report.digest)).size, 2);

    fleet.proxy.heal();
    const { ms } = await fleet.waitConverged({ timeoutMs: 20_000 });
    assert.ok(
      ms <= 2 * INTERVAL_MS,
      `converged ${Math.round(ms)} ms after the heal`,
    );
    const expected = later(rightWrite.version, leftWrite.version)
      ? "right"
      : "left";
    for (const instance of fleet.instances) {
      const same = await instance.client.get("split.same");
      assert.equal(same?.value, expected, `${instance.name} has the later`);
      const deleted = await instance.client.get("split.deleted");
      assert.equal(deleted, undefined, `${instance.name} has no deleted key`);
    }
  });
});

Deno.test("returning instance transfers only the changes", async () => {
  await withFleet({ size: 3, flags: FLAGS }, async (fleet) => {
    const [n1, n2, n3] = fleet.instances;
    const all = (value: string) =>
      Object.fromEntries(
        Array.from({ length: 1000 }, (_, i) => [`bulk.${i}`, `${value}-${i}`]),
      );
    await n1!.client.batch({ set: all("v1") });
    await fleet.waitConverged();

    /** Changes keys while n3 is down, restarts it, returns what it received. */
    const catchUp = async (set: Record<string, string>) => {
      await fleet.kill("n3");
      await n1!.client.batch({ set });
      await fleet.waitConverged({ instances: [n1!, n2!] });
      await waitFor(async () => {
        const reports = await fleet.statuses();
        return reports.every((report) => report.rumors_active === 0);
      }, "rumors on n1 and n2 ended");
      await fleet.restart("n3");
      await fleet.waitConverged({ timeoutMs: 20_000 });
      const report = await n3!.status();
      return {
        applied: counter(report, "updates_applied"),
        // Entries n3 was sent by any path, new to it or not.
        received: counter(report, "updates_applied") +
          counter(report, "duplicates_received"),
        bytes: counter(report, "sync_bytes", { direction: "in" }),
      };
    };

    const few = await catchUp({
      "bulk.1": "v2",
      "bulk.20": "v2",
      "bulk.300": "v2",
      "bulk.444": "v2",
      "bulk.999": "v2",
    });
    assert.equal(few.applied, 5, "n3 applied the five changes");
    assert.ok(few.received <= 20, `${few.received} entries sent to n3`);

    const many = await catchUp(all("v3"));
    assert.equal(many.applied, 1000, "n3 applied every key again");
    assert.ok(many.received >= 1000, `${many.received} entries sent to n3`);
    assert.ok(
      many.bytes > 10 * few.bytes,
      `${many.bytes} bytes for 1000 changes, ${few.bytes} for 5`,
    );
    assert.equal((await n3!.client.get("bulk.999"))?.value, "v3-999");
  });
});

Deno.test("writes acknowledged before SIGKILL reach all", async () => {
  await withFleet({ size: 4, flags: FLAGS }, async (fleet) => {
    const target = fleet.get("n4");
    const history = new History();
    const someAcknowledged = Promise.withResolvers<void>();
    let acknowledged = 0;
    let failed = 0;
    let next = 0;
    // Eight writers keep requests in flight until the instance dies.
    const writer = async () => {
      while (next < 5000 && failed === 0) {
        const key = `burst.${next++}`;
        const { record, value } = history.begin(key, "put", "n4");
        try {
          const answer = await target.client.put(key, value);
          history.acknowledge(record, answer.version);
          if (++acknowledged === 50) someAcknowledged.resolve();
        } catch (error) {
          history.fail(record, error);
          failed++;
        }
      }
    };
    const writers = Promise.all(Array.from({ length: 8 }, writer));
    await someAcknowledged.promise;
    await fleet.kill("n4");
    await writers;
    assert.ok(failed > 0, "some writes were in flight at the kill");

    await fleet.restart("n4");
    await fleet.waitConverged({ timeoutMs: 20_000 });
    for (const instance of fleet.instances) {
      const entries = await instance.client.list("burst.");
      const final = new Map<string, FinalEntry>(
        entries.map((entry) => [entry.key, entry]),
      );
      const check = checkHistory(history.ops, final);
      assert.equal(
        check.lost.length,
        0,
        `${instance.name}: ${check.lost[0]?.detail}`,
      );
      assert.equal(check.unexplained.length, 0, instance.name);
      assert.equal(check.acknowledgedPuts, acknowledged, instance.name);
    }
  });
});

Deno.test("delete during a partition stays deleted", async () => {
  await withFleet({ size: 4, flags: FLAGS }, async (fleet) => {
    const [n1, , , n4] = fleet.instances;
    await n1!.client.put("held", "old");
    await n1!.client.put("kept", "yes");
    await fleet.waitConverged();

    fleet.proxy.partition([["n4"], ["n1", "n2", "n3"]]);
    await n1!.client.delete("held");
    await n4!.client.put("n4.solo", "written alone");
    assert.equal(
      (await n4!.client.get("held"))?.value,
      "old",
      "n4 still has it",
    );
    await fleet.waitConverged({ instances: fleet.instances.slice(0, 3) });
    await delay(2 * INTERVAL_MS);

    fleet.proxy.heal();
    await fleet.waitConverged({ timeoutMs: 20_000 });
    for (const instance of fleet.instances) {
      assert.equal(await instance.client.get("held"), undefined, instance.name);
      const solo = await instance.client.get("n4.solo");
      assert.equal(solo?.value, "written alone", instance.name);
      assert.equal((await instance.client.get("kept"))?.value, "yes");
    }
  });
});

Deno.test("same-millisecond writes pick one winner", async () => {
  await withFleet({ size: 3, flags: FLAGS }, async (fleet) => {
    const [n1, n2] = fleet.instances;
    const ties: { key: string; winner: string }[] = [];
    // Concurrent writes often land in the same millisecond; keep trying.
    for (let attempt = 0; attempt < 400 && ties.length < 5; attempt++) {
      const key = `tie.${attempt}`;
      const [a, b] = await Promise.all([
        n1!.client.put(key, "n1"),
        n2!.client.put(key, "n2"),
      ]);
      if (a.version.split(".")[0] !== b.version.split(".")[0]) continue;
      ties.push({ key, winner: later(a.version, b.version) ? "n1" : "n2" });
    }
    assert.ok(ties.length > 0, "two writes shared a millisecond");

    await fleet.waitConverged();
    for (const { key, winner } of ties) {
      for (const instance of fleet.instances) {
        const entry = await instance.client.get(key);
        assert.equal(entry?.value, winner, `${instance.name} ${key}`);
      }
    }
  });
});

Deno.test("anti-entropy runs over HTTP without links", async () => {
  const flags = [...FLAGS, "--redial-max-ms", "1000"];
  await withFleet({ size: 3, flags }, async (fleet) => {
    const [n1, n2, n3] = fleet.instances;
    fleet.proxy.set("*", "*", { rejectWebSockets: true });
    await waitFor(async () => {
      const reports = await fleet.statuses();
      return reports.every((report) => report.links.length === 0);
    }, "every link closed");

    await n1!.client.put("over.http", 1);
    await n3!.client.delete("over.http.none");
    await fleet.waitConverged({ timeoutMs: 10_000 });
    assert.equal((await n2!.client.get("over.http"))?.value, 1);
    const report = await n2!.status();
    assert.ok(
      counter(report, "sync_sessions", { via: "http", result: "ok" }) > 0,
    );
    assert.equal(report.links.length, 0, "still no links");

    fleet.proxy.heal();
    await waitFor(async () => {
      const reports = await fleet.statuses();
      return reports.every((item) => item.links.length > 0);
    }, "links came back");
  });
});

Deno.test("random chaos keeps every acknowledged write", async () => {
  const seed = Number(Deno.env.get("GRAPEVINE_CHAOS_SEED") ?? 20260601);
  const lines: string[] = [];
  const report = await runChaos({
    seed,
    durationMs: 20_000,
    size: 6,
    antiEntropyIntervalMs: INTERVAL_MS,
    writers: 4,
    keys: 100,
    faultGapMs: 1500,
    killGapMs: 5000,
    convergeTimeoutMs: 30_000,
    log: (line) => lines.push(line),
  });
  const text = formatReport(report);
  if (!passed(report)) console.error(`${lines.join("\n")}\n${text}`);
  assert.equal(report.error, undefined, text);
  assert.ok(report.converged, text);
  assert.equal(report.check.lost.length, 0, text);
  assert.equal(report.check.resurrected.length, 0, text);
  assert.equal(report.check.unexplained.length, 0, text);
  assert.ok(report.faults.length >= 5, text);
  assert.ok(report.check.acknowledgedPuts > 100, text);
});
