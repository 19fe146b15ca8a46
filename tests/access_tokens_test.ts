import assert from "node:assert/strict";
import { randomSecret } from "../lib/cli/keygen.ts";
import { AccessTokens, TokenError } from "../lib/security/tokens.ts";
import { runCli } from "./helpers/cli.ts";
import { TestFleet, type TestInstance } from "./helpers/process.ts";

Deno.test("access tokens decide reads and writes", () => {
  const admin = randomSecret();
  const read = randomSecret();
  const open = new AccessTokens({ admin, read, readAccess: "open" });
  assert.equal(open.check(undefined, "read"), "ok");
  assert.equal(open.check(undefined, "write"), "missing");
  assert.equal(open.check(`Bearer ${admin}`, "write"), "ok");
  assert.equal(open.check(`bearer  ${admin} `, "write"), "ok");
  assert.equal(open.check(`Bearer ${read}`, "write"), "forbidden");
  assert.equal(open.check(`Bearer ${admin}x`, "write"), "invalid");
  assert.equal(open.check(`Basic ${admin}`, "write"), "missing");

  const closed = new AccessTokens({ admin, read, readAccess: "token" });
  assert.equal(closed.check(undefined, "read"), "missing");
  assert.equal(closed.check(`Bearer ${read}`, "read"), "ok");
  assert.equal(closed.check(`Bearer ${admin}`, "read"), "ok");

  const next = randomSecret();
  const rotating = new AccessTokens({
    admin: `${admin},${next}`,
    readAccess: "open",
  });
  assert.equal(rotating.check(`Bearer ${admin}`, "write"), "ok");
  assert.equal(rotating.check(`Bearer ${next}`, "write"), "ok");

  const dev = new AccessTokens({ readAccess: "open" });
  assert.equal(dev.check(undefined, "write"), "ok");
  assert.equal(dev.writesProtected, false);
});

Deno.test("token settings errors never show the token", () => {
  assert.throws(
    () => new AccessTokens({ admin: "short-secret", readAccess: "open" }),
    (error: Error) =>
      error instanceof TokenError && !error.message.includes("short-secret"),
  );
  assert.throws(
    () => new AccessTokens({ read: randomSecret(), readAccess: "token" }),
    /no admin token is set/,
  );
});

async function call(
  instance: TestInstance,
  method: string,
  path: string,
  token?: string,
  body?: string,
): Promise<{ status: number; code?: string; headers: Headers }> {
  const response = await fetch(instance.url + path, {
    method,
    body,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(path === "/" ? { accept: "text/html" } : {}),
    },
  });
  const text = await response.text();
  let code: string | undefined;
  try {
    code = JSON.parse(text)?.error?.code;
  } catch {
    code = undefined;
  }
  return { status: response.status, code, headers: response.headers };
}

Deno.test("API needs tokens for writes and closed reads", async (t) => {
  const admin = randomSecret();
  const read = randomSecret();
  await using fleet = await TestFleet.start(1, {
    env: { GRAPEVINE_ADMIN_TOKEN: admin, GRAPEVINE_READ_TOKEN: read },
    flags: ["--read-access", "token"],
  });
  const instance = fleet.instances[0]!;

  const cases: [string, string, string, string | undefined, number][] = [
    ["write without a token", "PUT", "/v1/config/k", undefined, 401],
    ["write with a wrong token", "PUT", "/v1/config/k", randomSecret(), 401],
    ["write with the read token", "PUT", "/v1/config/k", read, 403],
    ["write with the admin token", "PUT", "/v1/config/k", admin, 200],
    ["delete without a token", "DELETE", "/v1/config/k", undefined, 401],
    ["batch without a token", "POST", "/v1/config", undefined, 401],
    ["read without a token", "GET", "/v1/config/k", undefined, 401],
    ["read with the read token", "GET", "/v1/config/k", read, 200],
    ["status without a token", "GET", "/v1/status", undefined, 401],
    ["metrics without a token", "GET", "/metrics", undefined, 401],
    ["watch without a token", "GET", "/v1/watch", undefined, 401],
    ["health is open", "GET", "/healthz", undefined, 200],
    ["dashboard page is open", "GET", "/", undefined, 200],
  ];
  for (const [name, method, path, token, status] of cases) {
    await t.step(name, async () => {
      const body = method === "PUT"
        ? "1"
        : method === "POST"
        ? JSON.stringify({ set: { k: 2 } })
        : undefined;
      const result = await call(instance, method, path, token, body);
      assert.equal(result.status, status);
      if (status === 401) {
        assert.equal(result.code, "unauthorized");
        assert.match(result.headers.get("www-authenticate") ?? "", /^Bearer/);
      }
      if (status === 403) assert.equal(result.code, "forbidden");
    });
  }

  const status = await instance.status();
  assert.ok(status.counters["requests_rejected{reason=unauthorized}"]! >= 8);
  assert.equal(status.counters["requests_rejected{reason=forbidden}"], 1);
  const logs = instance.logs.join("\n");
  assert.ok(logs.includes("request rejected"));
  assert.equal(logs.includes(admin), false, "no admin token in the logs");
  assert.equal(logs.includes(read), false, "no read token in the logs");
});

Deno.test("CLI reads the token from env or file", async () => {
  const admin = randomSecret();
  await using fleet = await TestFleet.start(1, {
    env: { GRAPEVINE_ADMIN_TOKEN: admin },
  });
  const url = fleet.instances[0]!.url;
  const empty = { GRAPEVINE_ADMIN_TOKEN: "", GRAPEVINE_READ_TOKEN: "" };

  const denied = await runCli(["push", "cli.key", "1", "--url", url], empty);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /needs a bearer token/);

  const allowed = await runCli(["push", "cli.key", "2", "--url", url], {
    GRAPEVINE_ADMIN_TOKEN: admin,
  });
  assert.equal(allowed.code, 0, allowed.stderr);

  const tokenFile = `${fleet.dir}/token`;
  await Deno.writeTextFile(tokenFile, admin + "\n");
  const fromFile = await runCli(
    ["delete", "cli.key", "--url", url, "--token-file", tokenFile],
    empty,
  );
  assert.equal(fromFile.code, 0, fromFile.stderr);

  // Reads stay open by default, so the dashboard keeps working.
  const listed = await runCli(["list", "--url", url], empty);
  assert.equal(listed.code, 0, listed.stderr);
  const status = await runCli(["status", "--urls", url], empty);
  assert.equal(status.code, 0, status.stderr);
});
