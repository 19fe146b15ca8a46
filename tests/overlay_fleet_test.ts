import assert from "node:assert/strict";
import { shapeAfterShuffles, waitAllAlive } from "./helpers/membership.ts";
import { TestFleet } from "./helpers/process.ts";

Deno.test("overlay of 20 stays connected and balanced over 200 shuffles", async () => {
  await using fleet = await TestFleet.start(20, {
    flags: ["--shuffle-interval-ms", "250", "--log-level", "info"],
  });
  try {
    await waitAllAlive(
      fleet.instances,
      fleet.instances.map((instance) => instance.options.id),
      30_000,
    );
    const shape = await shapeAfterShuffles(fleet.instances, 200);
    assert.ok(shape.shuffles >= 200);

    assert.ok(shape.connected, "every instance reaches every other over links");
    const degrees = [...shape.degree.values()];
    const inDegrees = [...shape.inDegree.values()];
    const target =
      (await fetch(`${fleet.instances[0]!.url}/v1/members`).then((r) =>
        r.json()
      )).target_links;
    assert.ok(
      Math.min(...degrees) >= 2,
      `every instance has 2 or more links: ${degrees}`,
    );
    assert.ok(
      Math.max(...inDegrees) <= 3 * target,
      `in-degrees stay within 3 x ${target}: ${inDegrees}`,
    );
    assert.ok(
      Math.max(...degrees) <= 16,
      `no instance passes maxLinks: ${degrees}`,
    );
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});
