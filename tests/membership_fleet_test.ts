import assert from "node:assert/strict";
import {
  FalsePositiveMonitor,
  killAndDetect,
  members,
  view,
  waitAllAlive,
} from "./helpers/membership.ts";
import { delay, TestFleet } from "./helpers/process.ts";

/** Detection bound the README documents for the local preset. */
function detectionBoundMs(
  suspicionTimeoutMs: number,
  probeIntervalMs = 1000,
): number {
  return suspicionTimeoutMs + 5 * probeIntervalMs;
}

Deno.test("fleet of 12 detects 3 killed instances", async () => {
  await using fleet = await TestFleet.start(12, {
    flags: ["--log-level", "info"],
  });
  try {
    const ids = fleet.instances.map((instance) => instance.options.id);
    await waitAllAlive(fleet.instances, ids);
    const victims = fleet.instances.slice(9);
    const result = await killAndDetect(fleet, victims);
    const bound = detectionBoundMs(result.suspicionTimeoutMs);
    const slowest = Math.max(...result.detectionMs);
    assert.deepEqual(
      result.falsePositives,
      [],
      "no live instance was marked dead",
    );
    assert.ok(
      slowest <= bound,
      `slowest detection ${slowest} ms is within ${bound} ms`,
    );
    // Drop the killed instances so the fleet's clean-up skips them.
    fleet.instances.splice(9);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("update after half the fleet dies spreads by rumor", async () => {
  // Anti-entropy every hour: only rumors can deliver within the test.
  await using fleet = await TestFleet.start(12, {
    flags: ["--anti-entropy-interval-ms", "3600000", "--log-level", "info"],
  });
  try {
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
    );
    const victims = fleet.instances.filter((_, index) => index % 2 === 1);
    await Promise.all(victims.map((victim) => victim.kill()));
    const survivors = fleet.instances.filter((_, index) => index % 2 === 0);
    fleet.instances.splice(0, fleet.instances.length, ...survivors);
    // Links to the dead close at once; give the survivors a moment to relink.
    await delay(1500);

    await survivors[0]!.client.put("after.half", { ok: true });
    const deadline = Date.now() + 10_000;
    for (const survivor of survivors) {
      while (!(await survivor.client.get("after.half"))) {
        assert.ok(
          Date.now() < deadline,
          `${survivor.options.id} never got the update`,
        );
        await delay(50);
      }
    }
    for (const survivor of survivors) {
      const status = await survivor.status();
      const sessions = Object.entries(status.counters)
        .filter(([name]) => name.startsWith("sync_sessions"))
        .reduce((sum, [, value]) => sum + value, 0);
      assert.equal(sessions, 0, `${survivor.options.id} ran no anti-entropy`);
    }
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("paused instance refutes suspicion and stays alive", async () => {
  await using fleet = await TestFleet.start(5, {
    flags: ["--suspicion-mult", "5"],
  });
  try {
    const ids = fleet.instances.map((instance) => instance.options.id);
    await waitAllAlive(fleet.instances, ids);
    const paused = fleet.instances[3]!;
    const timeout = (await members(fleet.instances[0]!)).suspicion_timeout_ms;
    const monitor = new FalsePositiveMonitor(
      fleet,
      (id) => id !== paused.options.id,
    );
    const before = (await members(paused)).members.find((member) =>
      member.id === paused.options.id
    )!;

    paused.signal("SIGSTOP");
    await delay(timeout / 2);
    paused.signal("SIGCONT");
    // Watch it for longer than the suspicion timeout.
    const deaths: string[] = [];
    const until = Date.now() + timeout + 2000;
    while (Date.now() < until) {
      for (const instance of fleet.instances) {
        if (instance === paused) continue;
        if ((await view(instance)).get(paused.options.id) === "dead") {
          deaths.push(instance.options.id);
        }
      }
      await delay(200);
    }
    await monitor.stop();
    assert.deepEqual(deaths, [], "no instance declared the paused one dead");
    await waitAllAlive(fleet.instances, ids, 10_000);
    const after = (await members(paused)).members.find((member) =>
      member.id === paused.options.id
    )!;
    assert.ok(after.incarnation >= before.incarnation);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("instance restarted on a new port is listed once", async () => {
  await using fleet = await TestFleet.start(5);
  try {
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
    );
    const moved = fleet.instances[4]!;
    const oldUrl = moved.url;
    await moved.kill();
    const restarted = await fleet.restart(moved, { port: 0 });
    assert.notEqual(restarted.url, oldUrl);
    const deadline = Date.now() + 15_000;
    while (true) {
      const reports = await Promise.all(fleet.instances.map(members));
      const wrong = reports.filter((report) => {
        const records = report.members.filter((member) =>
          member.id === moved.options.id
        );
        return records.length !== 1 || records[0]!.url !== restarted.url ||
          records[0]!.state !== "alive";
      });
      if (wrong.length === 0) break;
      assert.ok(
        Date.now() < deadline,
        `still listed wrongly by ${
          wrong.map((report) => report.id).join(", ")
        }`,
      );
      await delay(200);
    }
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("dead member comes back without stale entries", async () => {
  await using fleet = await TestFleet.start(4);
  try {
    const ids = fleet.instances.map((instance) => instance.options.id);
    await waitAllAlive(fleet.instances, ids);
    const [first, , , returning] = fleet.instances;
    await first!.client.put("config.mode", "old");
    await fleet.waitConverged({ entries: 1 });

    const others = fleet.instances.slice(0, 3);
    await returning!.kill();
    const deadline = Date.now() + 20_000;
    while (
      (await Promise.all(others.map(view))).some((seen) =>
        seen.get(returning!.options.id) !== "dead"
      )
    ) {
      assert.ok(Date.now() < deadline, "the killed instance was declared dead");
      await delay(200);
    }
    await first!.client.put("config.mode", "new");

    const back = await fleet.restart(returning!);
    await waitAllAlive(fleet.instances, ids);
    await fleet.waitConverged({ entries: 1 });
    for (const instance of fleet.instances) {
      assert.equal(
        (await instance.client.get("config.mode"))?.value,
        "new",
        instance.options.id,
      );
    }
    assert.equal((await back.client.get("config.mode"))?.value, "new");
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});
