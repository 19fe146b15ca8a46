import assert from "node:assert/strict";
import { TestFleet } from "./helpers/process.ts";

Deno.test("killed instance restarts with its data and catches up", async () => {
  await using fleet = await TestFleet.start(3);
  try {
    const [a, b, c] = fleet.instances as [
      typeof fleet.instances[0],
      typeof fleet.instances[0],
      typeof fleet.instances[0],
    ];
    for (let i = 0; i < 20; i++) await a.client.put(`before.${i}`, i);
    await fleet.waitConverged({ entries: 20 });

    await c.kill();
    for (let i = 0; i < 20; i++) await b.client.put(`during.${i}`, i);
    await b.client.delete("before.0");

    const restarted = await fleet.restart(c);
    const own = await restarted.client.get("before.5");
    assert.equal(own?.value, 5, "entries written before the kill survive");
    await fleet.waitConverged({ entries: 39, timeoutMs: 20_000 });
    assert.equal((await restarted.client.get("during.19"))?.value, 19);
    assert.equal(await restarted.client.get("before.0"), undefined);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("writes acknowledged before SIGKILL survive and spread", async () => {
  await using fleet = await TestFleet.start(3);
  try {
    const target = fleet.instances[2]!;
    const acknowledged: string[] = [];
    const failed: string[] = [];
    const someAcknowledged = Promise.withResolvers<void>();
    let next = 0;
    // Eight writers keep requests in flight until the instance dies.
    const writer = async () => {
      while (next < 5000 && failed.length === 0) {
        const key = `burst.${next++}`;
        try {
          await target.client.put(key, { key });
          acknowledged.push(key);
          if (acknowledged.length === 50) someAcknowledged.resolve();
        } catch {
          failed.push(key);
        }
      }
    };
    const writers = Promise.all(Array.from({ length: 8 }, writer));
    await someAcknowledged.promise;
    await target.kill();
    await writers;
    assert.ok(failed.length > 0, "some writes were in flight at the kill");

    const restarted = await fleet.restart(target);
    for (const key of acknowledged) {
      assert.ok(await restarted.client.get(key), `${key} survived the restart`);
    }
    await fleet.waitConverged({ timeoutMs: 20_000 });
    const other = fleet.instances[0]!;
    for (const key of acknowledged) {
      assert.ok(await other.client.get(key), `${key} reached another instance`);
    }
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("restarted instance keeps its clock ahead", async () => {
  await using fleet = await TestFleet.start(1);
  const only = fleet.instances[0]!;
  const before = await only.client.put("k", 1);
  await only.kill();
  const restarted = await fleet.restart(only);
  const after = await restarted.client.put("k", 2);
  const [wallBefore, counterBefore] = before.version.split(".").map(Number);
  const [wallAfter, counterAfter] = after.version.split(".").map(Number);
  assert.ok(
    wallAfter! > wallBefore! ||
      (wallAfter === wallBefore && counterAfter! > counterBefore!),
    `${after.version} is after ${before.version}`,
  );
});
