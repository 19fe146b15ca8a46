import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { flattenConfig, parseConfigText } from "../lib/config_file.ts";
import { runCli } from "./helpers/cli.ts";
import { TestFleet } from "./helpers/process.ts";

const FIXTURE = fileURLToPath(
  new URL("./fixtures/edge-config.yaml", import.meta.url),
);

Deno.test("fleet of 5 converges on the pushed fixture", async () => {
  const expected = flattenConfig(
    parseConfigText(await Deno.readTextFile(FIXTURE), FIXTURE),
  );
  const keys = Object.keys(expected);
  assert.ok(keys.length > 200, `fixture has ${keys.length} keys`);
  await using fleet = await TestFleet.start(5);
  try {
    const first = fleet.instances[0]!;
    const push = await runCli(["push", "--file", FIXTURE, "--url", first.url]);
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, new RegExp(`pushed ${keys.length} entries`));

    await fleet.waitConverged({ entries: keys.length, timeoutMs: 20_000 });
    const urls = fleet.instances.map((instance) => instance.url).join(",");
    const status = await runCli(["status", "--urls", urls]);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(
      status.stdout,
      new RegExp(`all 5 instances agree: ${keys.length} entries`),
    );

    for (const instance of fleet.instances) {
      const entries = await instance.client.list();
      assert.equal(entries.length, keys.length, instance.options.id);
      for (const entry of entries) {
        assert.deepEqual(
          entry.value,
          expected[entry.key],
          `${instance.options.id} ${entry.key}`,
        );
      }
    }
    const last = fleet.instances[4]!;
    const get = await runCli([
      "get",
      "features.checkout-v2",
      "--url",
      last.url,
    ]);
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(JSON.parse(get.stdout), expected["features.checkout-v2"]);

    // status --url finds the other instances through the member list, and
    // reports one that was killed until the members forget it.
    const found = await runCli(["status", "--url", first.url]);
    assert.equal(found.code, 0, found.stdout + found.stderr);
    assert.match(found.stdout, /all 5 instances agree/);
    await last.kill();
    const missing = await runCli(["status", "--url", first.url]);
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stdout, new RegExp(`unreachable: ${last.url}`));
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("fleet spreads a delete to every instance", async () => {
  await using fleet = await TestFleet.start(4);
  try {
    const [a, , , d] = fleet.instances;
    await a!.client.put("doomed", { x: 1 });
    await a!.client.put("kept", 2);
    await fleet.waitConverged({ entries: 2 });
    const removed = await d!.client.delete("doomed");
    assert.equal(removed.existed, true);
    const reports = await fleet.waitConverged({ entries: 1 });
    for (const report of reports) assert.equal(report.tombstones, 1, report.id);
    for (const instance of fleet.instances) {
      assert.equal(await instance.client.get("doomed"), undefined);
      assert.equal((await instance.client.get("kept"))?.value, 2);
    }
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});
