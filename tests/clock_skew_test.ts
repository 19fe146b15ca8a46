// Hybrid logical clocks on instances whose wall clocks are minutes apart,
// set with the test-only GRAPEVINE_TEST_CLOCK_OFFSET_MS.

import assert from "node:assert/strict";
import { testClockOffsetMs } from "../lib/instance.ts";
import { compareVersions, parseVersion } from "../lib/protocol/clock.ts";
import { counter, waitFor, withFleet } from "./helpers/chaos.ts";

const MINUTE = 60_000;

function offset(ms: number): Record<string, string> {
  return { GRAPEVINE_TEST_CLOCK_OFFSET_MS: String(ms) };
}

function wallOf(version: string): number {
  return parseVersion(version)![0];
}

Deno.test("skewed clocks still order causal writes", async () => {
  const flags = ["--max-clock-drift-ms", String(10 * MINUTE)];
  const env = (name: string) =>
    name === "n3"
      ? offset(3 * MINUTE)
      : name === "n2"
      ? offset(-3 * MINUTE)
      : {};
  await withFleet({ size: 3, flags, env }, async (fleet) => {
    const [n1, n2, n3] = fleet.instances;
    const ahead = await n3!.client.put("skew", "from n3, 3 min ahead");
    assert.ok(wallOf(ahead.version) > Date.now() + 2 * MINUTE);
    await fleet.waitConverged();

    // n1 saw n3's version, so its write orders after it.
    const after = await n1!.client.put("skew", "from n1, after");
    assert.ok(
      compareVersions(
        parseVersion(after.version)!,
        parseVersion(ahead.version)!,
      ) >
        0,
    );
    await fleet.waitConverged();
    // n2 runs 3 min behind and still writes after both.
    const behind = await n2!.client.put("skew", "from n2, 3 min behind");
    assert.ok(
      compareVersions(
        parseVersion(behind.version)!,
        parseVersion(after.version)!,
      ) >
        0,
    );
    await fleet.waitConverged();
    for (const instance of fleet.instances) {
      const entry = await instance.client.get("skew");
      assert.equal(entry?.value, "from n2, 3 min behind", instance.name);
    }
  });
});

Deno.test("versions past the maximum drift are rejected", async () => {
  const env = (name: string) => name === "n3" ? offset(5 * MINUTE) : {};
  await withFleet({ size: 3, env }, async (fleet) => {
    const [n1, n2, n3] = fleet.instances;
    await n3!.client.put("future", "5 min ahead");
    await n1!.client.put("present", "now");
    await waitFor(async () => {
      const reports = await Promise.all([n1!.status(), n2!.status()]);
      return reports.every((report) =>
        counter(report, "entries_rejected", { reason: "future_version" }) > 0
      );
    }, "n1 and n2 rejected n3's write");
    await waitFor(
      async () => (await n3!.client.get("present")) !== undefined,
      "n3 took n1's write",
    );
    assert.equal(await n1!.client.get("future"), undefined);
    assert.equal(await n2!.client.get("future"), undefined);
    assert.ok(
      n1!.logs.some((line) =>
        line.includes('"entry rejected"') && line.includes("future_version")
      ),
      "n1 logged the rejection",
    );
  });
});

Deno.test("restart after the clock went back issues higher versions", async () => {
  await withFleet(
    { size: 1, env: () => offset(2 * MINUTE) },
    async (fleet) => {
      const only = fleet.instances[0]!;
      const before = await only.client.put("k", 1);
      await fleet.kill("n1");
      // The wall clock is now two minutes behind the last version issued.
      await fleet.restart("n1", { env: {} });
      const after = await only.client.put("k", 2);
      assert.ok(
        compareVersions(
          parseVersion(after.version)!,
          parseVersion(before.version)!,
        ) >
          0,
        `${after.version} is after ${before.version}`,
      );
      assert.equal((await only.client.get("k"))?.value, 2);
    },
  );
});

Deno.test("testClockOffsetMs reads whole milliseconds", () => {
  assert.equal(testClockOffsetMs(() => undefined), 0);
  assert.equal(testClockOffsetMs(() => "-120000"), -120000);
  assert.throws(() => testClockOffsetMs(() => "soon"), /whole number/);
});
