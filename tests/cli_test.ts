import assert from "node:assert/strict";
import { runCli } from "./helpers/cli.ts";
import { TestFleet } from "./helpers/process.ts";

const COMMANDS = [
  "serve",
  "fleet",
  "push",
  "get",
  "delete",
  "list",
  "status",
  "watch",
];

Deno.test("every command prints --help and exits 0", async () => {
  for (const command of COMMANDS) {
    const result = await runCli([command, "--help"]);
    assert.equal(result.code, 0, command);
    assert.match(
      result.stdout,
      new RegExp(`^Usage: main.ts ${command}`),
      command,
    );
    assert.match(result.stdout, /--help/, command);
  }
  const top = await runCli(["--help"]);
  assert.equal(top.code, 0);
  for (const command of COMMANDS) {
    assert.match(top.stdout, new RegExp(`\\n  ${command} `));
  }
});

Deno.test("CLI usage errors exit 2 with a reason", async () => {
  const unknown = await runCli(["launch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown command "launch"/);

  const badFlag = await runCli(["get", "k", "--colour"]);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /Unknown option '--colour'/);
  assert.doesNotMatch(badFlag.stderr, /did you mean/);

  const typo = await runCli(["statu"]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /Unknown command "statu"; did you mean status\?/);

  const flagTypo = await runCli(["get", "k", "--jsno"]);
  assert.equal(flagTypo.code, 2);
  assert.match(flagTypo.stderr, /did you mean --json\?/);

  const missing = await runCli([
    "push",
    "only-key",
    "--url",
    "http://127.0.0.1:9",
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Expected KEY VALUE/);
});

Deno.test("serve rejects invalid settings with exit 1", async () => {
  const badPort = await runCli(["serve", "--port", "70000"]);
  assert.equal(badPort.code, 1);
  assert.match(badPort.stderr, /port: Too big/i);

  const notNumber = await runCli(["serve", "--fanout", "many"]);
  assert.equal(notNumber.code, 1);
  assert.match(notNumber.stderr, /Invalid --fanout: "many" is not a number/);

  const badEnv = await runCli(["serve"], { GRAPEVINE_SEEDS: "ftp://x" });
  assert.equal(badEnv.code, 1);
  assert.match(badEnv.stderr, /seeds.0: "ftp:\/\/x" is not an http/);
});

Deno.test("serve refuses a KV file of another instance", async () => {
  await using fleet = await TestFleet.start(1);
  const instance = fleet.instances[0]!;
  await instance.stop();
  const result = await runCli([
    "serve",
    "--id",
    "someone-else",
    "--port",
    "0",
    "--kv-path",
    instance.options.kvPath,
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /belongs to instance n1, not someone-else/);
});

Deno.test("client commands report failures with exit 1", async () => {
  await using fleet = await TestFleet.start(1);
  const url = fleet.instances[0]!.url;
  const missing = await runCli(["get", "nothing-here", "--url", url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Key nothing-here not found/);

  const badKey = await runCli(["push", "bad key", "1", "--url", url]);
  assert.equal(badKey.code, 1);
  assert.match(badKey.stderr, /is invalid: use letters, digits/);

  const unreachable = await runCli(["list", "--url", "http://127.0.0.1:9"]);
  assert.equal(unreachable.code, 1);
  assert.match(
    unreachable.stderr,
    /GET http:\/\/127.0.0.1:9\/v1\/config failed/,
  );

  const notFile = await runCli([
    "push",
    "--file",
    "/nonexistent.yaml",
    "--url",
    url,
  ]);
  assert.equal(notFile.code, 1);
  assert.match(notFile.stderr, /nonexistent\.yaml/);
});

Deno.test("push, get, list and delete round-trip", async () => {
  await using fleet = await TestFleet.start(1);
  const url = fleet.instances[0]!.url;
  assert.equal((await runCli(["push", "flag", "true", "--url", url])).code, 0);
  assert.equal(
    (await runCli(["push", "greeting", "hello world", "--url", url])).code,
    0,
  );
  assert.equal(
    (await runCli(["push", "zip", "01234", "--string", "--url", url])).code,
    0,
  );

  assert.equal(
    (await runCli(["get", "flag", "--url", url])).stdout.trim(),
    "true",
  );
  assert.equal(
    (await runCli(["get", "greeting", "--url", url])).stdout.trim(),
    "hello world",
  );
  assert.equal(
    (await runCli(["get", "zip", "--url", url])).stdout.trim(),
    "01234",
  );

  const list = await runCli(["list", "--url", url]);
  assert.deepEqual(list.stdout.trim().split("\n"), [
    "flag = true",
    'greeting = "hello world"',
    'zip = "01234"',
  ]);

  const removed = await runCli(["delete", "flag", "--url", url]);
  assert.equal(removed.code, 0);
  assert.match(removed.stdout, /deleted flag at version/);
  const deleted = await runCli(["get", "flag", "--url", url]);
  assert.equal(deleted.code, 1);
  assert.match(deleted.stderr, /Key flag not found: it was deleted at version/);
});

Deno.test("fleet refuses ports already in use", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "grapevine-fleet-" });
  try {
    await Deno.writeTextFile(
      `${dir}/deploy.yml`,
      `fleet: busy\nregions:\n  - name: eu\n    instances:\n      - { id: a1, port: ${port} }\n`,
    );
    const result = await runCli(["fleet", "--manifest", `${dir}/deploy.yml`]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`Ports already in use: ${port} \\(a1\\)`),
    );
    assert.match(result.stderr, /Is another fleet running\?/);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client commands reject malformed URLs", async () => {
  const noScheme = await runCli(["get", "k", "--url", "127.0.0.1:8001"]);
  assert.equal(noScheme.code, 2);
  assert.match(
    noScheme.stderr,
    /expected a base URL such as http:\/\/127.0.0.1:8001/,
  );
  const withPath = await runCli([
    "get",
    "k",
    "--url",
    "http://127.0.0.1:8001/v1",
  ]);
  assert.equal(withPath.code, 2);
  assert.match(
    withPath.stderr,
    /without a path, such as http:\/\/127.0.0.1:8001/,
  );
});
