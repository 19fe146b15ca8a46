import assert from "node:assert/strict";
import { TestFleet, type TestInstance } from "./helpers/process.ts";
import { SIGNATURE_HEADER, VERSION_HEADER } from "../lib/http/app.ts";

async function request(
  instance: TestInstance,
  method: string,
  path: string,
  body?: string,
): Promise<
  {
    status: number;
    json:
      & { error?: { code: string; message: string } }
      & Record<string, unknown>;
  }
> {
  const response = await fetch(instance.url + path, {
    method,
    body,
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("HTTP API rejects bad input and keeps data", async (t) => {
  await using fleet = await TestFleet.start(1, {
    flags: ["--max-key-bytes", "64", "--max-value-bytes", "1000"],
  });
  const instance = fleet.instances[0]!;
  await instance.client.put("existing", { keep: true });
  const before = await instance.status();

  const cases: [string, string, string, string | undefined, number, string][] =
    [
      [
        "invalid JSON body",
        "PUT",
        "/v1/config/k",
        "{oops",
        400,
        "invalid_json",
      ],
      ["empty body", "PUT", "/v1/config/k", "", 400, "invalid_json"],
      [
        "key too long",
        "PUT",
        `/v1/config/${"k".repeat(65)}`,
        "1",
        400,
        "invalid_key",
      ],
      [
        "key with bad characters",
        "PUT",
        "/v1/config/bad%20key",
        "1",
        400,
        "invalid_key",
      ],
      [
        "value too large",
        "PUT",
        "/v1/config/big",
        JSON.stringify("x".repeat(2000)),
        413,
        "value_too_large",
      ],
      [
        "body over the frame limit",
        "PUT",
        "/v1/config/huge",
        JSON.stringify("x".repeat(2_000_000)),
        413,
        "body_too_large",
      ],
      [
        "batch with a bad key",
        "POST",
        "/v1/config",
        JSON.stringify({ set: { fine: 1, "no spaces": 2 } }),
        400,
        "invalid_key",
      ],
      [
        "batch of the wrong shape",
        "POST",
        "/v1/config",
        JSON.stringify({ put: {} }),
        400,
        "invalid_request",
      ],
      [
        "value nested too deep",
        "PUT",
        "/v1/config/deep",
        "[".repeat(65) + "]".repeat(65),
        400,
        "invalid_value",
      ],
      [
        "body nested far too deep",
        "PUT",
        "/v1/config/deep",
        "[".repeat(10_000) + "]".repeat(10_000),
        400,
        "invalid_value",
      ],
      [
        "number beyond a double",
        "PUT",
        "/v1/config/huge-number",
        '{"limit": 1e400}',
        400,
        "invalid_value",
      ],
      [
        "batch key __proto__",
        "POST",
        "/v1/config",
        '{"set": {"__proto__": 1}}',
        400,
        "invalid_key",
      ],
      [
        "batch that sets and deletes one key",
        "POST",
        "/v1/config",
        JSON.stringify({ set: { both: 1 }, delete: ["both"] }),
        400,
        "invalid_request",
      ],
      ["unknown route", "GET", "/v2/nothing", undefined, 404, "not_found"],
      ["missing key", "GET", "/v1/config/absent", undefined, 404, "not_found"],
      [
        "sync request of the wrong shape",
        "POST",
        "/v1/sync",
        JSON.stringify({ v: 1 }),
        400,
        "invalid_request",
      ],
      [
        "plain GET on /gossip",
        "GET",
        "/gossip",
        undefined,
        426,
        "upgrade_required",
      ],
    ];
  for (const [name, method, path, body, status, code] of cases) {
    await t.step(name, async () => {
      const response = await request(instance, method, path, body);
      assert.equal(response.status, status);
      assert.equal(response.json.error?.code, code);
      assert.ok(
        (response.json.error?.message ?? "").length > 10,
        "message explains the error",
      );
    });
  }

  await t.step("version and signature without publisher keys", async () => {
    const response = await fetch(`${instance.url}/v1/config/forged`, {
      method: "PUT",
      body: "1",
      headers: {
        "content-type": "application/json",
        [VERSION_HEADER]: `${Date.now()}.0.elsewhere`,
        [SIGNATURE_HEADER]: "A".repeat(86),
      },
    });
    const json = await response.json();
    assert.equal(response.status, 403);
    assert.equal(json.error.code, "bad_signature");
    assert.match(json.error.message, /has no publisher keys/);
  });

  const after = await instance.status();
  assert.equal(after.entries, before.entries);
  assert.equal(after.digest, before.digest);
  assert.deepEqual((await instance.client.get("existing"))?.value, {
    keep: true,
  });
  assert.equal(
    await instance.client.get("fine"),
    undefined,
    "a rejected batch stores nothing",
  );
});

Deno.test("HTTP API reads and writes config", async () => {
  await using fleet = await TestFleet.start(1);
  const instance = fleet.instances[0]!;
  const put = await request(
    instance,
    "PUT",
    "/v1/config/routing/eu:api",
    JSON.stringify({ upstream: "a" }),
  );
  assert.equal(put.status, 200);
  assert.match(String(put.json.version), /^\d+\.\d+\.n1$/);

  const get = await request(instance, "GET", "/v1/config/routing/eu:api");
  assert.equal(get.status, 200);
  assert.deepEqual(get.json.value, { upstream: "a" });

  const batch = await request(
    instance,
    "POST",
    "/v1/config",
    JSON.stringify({ set: { a: 1, b: [2] }, delete: ["routing/eu:api"] }),
  );
  assert.equal(batch.status, 200);
  assert.equal(batch.json.count, 3);

  const list = await request(instance, "GET", "/v1/config");
  assert.deepEqual(
    (list.json.entries as { key: string }[]).map((entry) => entry.key),
    ["a", "b"],
  );

  const removed = await request(instance, "DELETE", "/v1/config/never-existed");
  assert.equal(removed.status, 200);
  assert.equal(removed.json.existed, false);

  // Keys that name Object methods are plain keys, also in a batch.
  const methods = await request(
    instance,
    "POST",
    "/v1/config",
    JSON.stringify({ set: { constructor: 1, toString: 2 } }),
  );
  assert.equal(methods.status, 200);
  assert.equal((await instance.client.get("constructor"))?.value, 1);
  const deleted = await request(
    instance,
    "POST",
    "/v1/config",
    JSON.stringify({ delete: ["toString", "valueOf"] }),
  );
  assert.equal(deleted.status, 200);
  assert.equal(await instance.client.get("toString"), undefined);

  const health = await request(instance, "GET", "/healthz");
  assert.equal(health.json.ok, true);
});
