import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { GrapevineClient } from "../lib/client.ts";
import { delay, TestFleet } from "./helpers/process.ts";

const ENTRY = fileURLToPath(
  new URL("../lib/deploy/deno_deploy_entry.ts", import.meta.url),
);
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

/** Polls `check` every 100 ms until it returns true or `timeoutMs` passes. */
async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  description: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await delay(100);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${description}`);
}

Deno.test("undialable instance joins through a seed", async () => {
  await using fleet = await TestFleet.start(1);
  const seed = fleet.instances[0]!;
  // The Deno Deploy entrypoint as that platform runs it: no arguments,
  // settings from the environment, no advertised URL.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG, "-A", ENTRY],
    env: {
      GRAPEVINE_ID: "edge",
      GRAPEVINE_REGION: "deno-deploy",
      GRAPEVINE_HOST: "127.0.0.1",
      GRAPEVINE_PORT: "0",
      GRAPEVINE_KV_PATH: `${fleet.dir}/edge.kv`,
      GRAPEVINE_SEEDS: seed.url,
      GRAPEVINE_PRESET: "local",
      GRAPEVINE_LOG_FORMAT: "json",
      NO_COLOR: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let logs = "";
  const started = Promise.withResolvers<{ url: string | null; port: number }>();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      logs += chunk;
      // Only whole lines: the last piece may still be arriving.
      const line = logs.split("\n").slice(0, -1).find((text) =>
        text.includes('"instance started"')
      );
      if (line) started.resolve(JSON.parse(line));
    }
  };
  const drained = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const startTimer = setTimeout(
    () => started.reject(new Error(`the entrypoint did not start in 20 s`)),
    20_000,
  );
  child.status.then(() =>
    started.reject(new Error(`the entrypoint exited:\n${logs}`))
  );
  try {
    const { url, port } = await started.promise;
    clearTimeout(startTimer);
    assert.equal(url, null, "advertises no URL");
    const edge = new GrapevineClient(`http://127.0.0.1:${port}`);

    await seed.client.put("from-seed", { n: 1 });
    await waitFor(
      async () => (await edge.get("from-seed"))?.value !== undefined,
      15_000,
      "the seed's entry on the undialable instance",
    );
    assert.deepEqual((await edge.get("from-seed"))?.value, { n: 1 });

    await edge.put("from-edge", "hello");
    await waitFor(
      async () => (await seed.client.get("from-edge")) !== undefined,
      15_000,
      "the undialable instance's entry on the seed",
    );

    const status = await seed.status();
    const member = status.members.find((item) => item.id === "edge");
    assert.ok(member, JSON.stringify(status.members));
    assert.equal(member.url, null);
    assert.equal(member.region, "deno-deploy");
    const link = status.links.find((item) => item.peer === "edge");
    assert.equal(link?.direction, "in", "the edge dialled the seed");
  } finally {
    clearTimeout(startTimer);
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    const killTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }, 5000);
    const status = await child.status;
    clearTimeout(killTimer);
    await drained;
    assert.equal(
      status.code,
      0,
      `the entrypoint did not stop cleanly:\n${logs}`,
    );
  }
});
