import assert from "node:assert/strict";
import {
  AUTH_HEADER,
  AUTH_MAX_SKEW_MS,
  FleetAuth,
  Keyring,
  KeyringError,
} from "../lib/security/fleet_auth.ts";
import { randomSecret } from "../lib/cli/keygen.ts";
import { delay, TestFleet, type TestInstance } from "./helpers/process.ts";
import { RawPeer } from "./helpers/raw_peer.ts";

Deno.test("keyring rejects short and repeated keys", () => {
  assert.throws(
    () => Keyring.parse("short", "TEST_KEYS"),
    (error: Error) =>
      error instanceof KeyringError &&
      /Key 1 of TEST_KEYS is shorter than 16 bytes/.test(error.message) &&
      !error.message.includes("short,"),
  );
  const key = randomSecret();
  assert.throws(() => Keyring.parse(`${key},${key}`), /repeats an earlier key/);
  const keyring = Keyring.parse(` ${key} , ${randomSecret()} ,`);
  assert.equal(keyring.size, 2);
  assert.match(keyring.primary!.id, /^[0-9a-f]{8}$/);
  assert.equal(Keyring.parse("").enabled, false);
});

Deno.test("dial proof passes once and only with the key", () => {
  let now = 1_000_000;
  const [a, b] = [randomSecret(), randomSecret()];
  const dialler = new FleetAuth(Keyring.parse(a), () => now);
  const acceptor = new FleetAuth(Keyring.parse(`${b},${a}`), () => now);
  const stranger = new FleetAuth(Keyring.parse(b), () => now);

  const proof = dialler.dialProof("sync", "body")!;
  assert.equal(acceptor.checkDial(proof.header, "sync", "body").ok, true);
  assert.deepEqual(acceptor.checkDial(proof.header, "sync", "body"), {
    ok: false,
    reason: "replayed",
  });
  const other = dialler.dialProof("sync", "body")!;
  assert.deepEqual(acceptor.checkDial(other.header, "sync", "changed"), {
    ok: false,
    reason: "bad_mac",
  });
  assert.deepEqual(acceptor.checkDial(other.header, "gossip", "body"), {
    ok: false,
    reason: "bad_mac",
  });
  assert.deepEqual(stranger.checkDial(other.header, "sync", "body"), {
    ok: false,
    reason: "unknown_key",
  });
  assert.deepEqual(acceptor.checkDial(undefined, "sync"), {
    ok: false,
    reason: "missing",
  });
  assert.deepEqual(acceptor.checkDial("kid=zz", "sync"), {
    ok: false,
    reason: "malformed",
  });

  const old = dialler.dialProof("gossip")!;
  now += AUTH_MAX_SKEW_MS + 1;
  assert.deepEqual(acceptor.checkDial(old.header, "gossip"), {
    ok: false,
    reason: "stale",
  });
});

Deno.test("link challenge proves the key both ways", () => {
  const key = randomSecret();
  const dialler = new FleetAuth(Keyring.parse(key));
  const acceptor = new FleetAuth(Keyring.parse(key));
  const impostor = new FleetAuth(Keyring.parse(randomSecret()));
  const proof = dialler.dialProof("gossip")!;
  const accepted = acceptor.checkDial(proof.header, "gossip");
  assert.ok(accepted.ok);

  const challenge = acceptor.challenge(accepted.key, accepted.nonce);
  assert.equal(dialler.checkChallenge(proof.key, proof.nonce, challenge), true);
  const fake = impostor.challenge(impostor.keyring.primary!, proof.nonce);
  assert.equal(dialler.checkChallenge(proof.key, proof.nonce, fake), false);

  const answer = dialler.answer(proof.key, proof.nonce, challenge.nonce);
  assert.equal(
    acceptor.checkAnswer(accepted.key, accepted.nonce, challenge.nonce, answer),
    true,
  );
  // An answer to another challenge (a replay) fails.
  const stale = dialler.answer(proof.key, proof.nonce, "x".repeat(22));
  assert.equal(
    acceptor.checkAnswer(accepted.key, accepted.nonce, challenge.nonce, stale),
    false,
  );
});

async function syncStatus(
  instance: TestInstance,
  headers: Record<string, string>,
): Promise<number> {
  const body = JSON.stringify({
    v: 1,
    from: "probe",
    body: { nodes: [["", "0".repeat(32)]], want: [], push: [] },
  });
  const response = await fetch(`${instance.url}/v1/sync`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  await response.body?.cancel();
  return response.status;
}

/** Sends a failure-detector probe for `a` itself, signed with `keys` if given. */
async function probeStatus(
  instance: TestInstance,
  keys: string | undefined,
): Promise<number> {
  const self = (await instance.status()).id;
  const body = JSON.stringify({
    v: 1,
    type: "probe",
    seq: 1,
    from: { id: "prober", region: "test", url: null, incarnation: 1 },
    target: self,
  });
  const proof = keys
    ? new FleetAuth(Keyring.parse(keys)).dialProof("probe", body)
    : undefined;
  const response = await fetch(`${instance.url}/v1/probe`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(proof ? { [AUTH_HEADER]: proof.header } : {}),
    },
    body,
  });
  await response.body?.cancel();
  return response.status;
}

function signedSyncRequest(keys: string): {
  body: string;
  headers: Record<string, string>;
  auth: FleetAuth;
  proof: NonNullable<ReturnType<FleetAuth["dialProof"]>>;
} {
  const auth = new FleetAuth(Keyring.parse(keys));
  const body = JSON.stringify({
    v: 1,
    from: "probe",
    body: { nodes: [["", "0".repeat(32)]], want: [], push: [] },
  });
  const proof = auth.dialProof("sync", body)!;
  return { body, headers: { [AUTH_HEADER]: proof.header }, auth, proof };
}

Deno.test("gossip and sync need the fleet key", async () => {
  const retired = randomSecret();
  const current = randomSecret();
  await using fleet = await TestFleet.start(2, {
    env: { GRAPEVINE_FLEET_KEYS: current },
  });
  const [a, b] = fleet.instances as [TestInstance, TestInstance];
  await fleet.waitConverged();
  await a.client.put("secured", 1);
  await fleet.waitConverged({ entries: 1 });

  // No key, a retired key and a stranger's key are all turned away.
  for (const keys of [undefined, retired, `${retired},${current}`]) {
    await assert.rejects(
      RawPeer.connect(a.url, { keys }),
      /Invalid status code: 401/,
      `dial with ${keys === undefined ? "no key" : "a wrong first key"}`,
    );
  }
  assert.equal(await syncStatus(a, {}), 401);
  assert.equal(await syncStatus(a, signedSyncRequest(retired).headers), 401);
  assert.equal(await probeStatus(a, undefined), 401, "probe without a key");
  assert.equal(await probeStatus(a, retired), 401, "probe with a retired key");
  assert.equal(await probeStatus(a, current), 200, "probe with the key");

  // The current key opens both, and the response proves the responder.
  const peer = await RawPeer.connect(a.url, { keys: current });
  assert.equal(peer.received[0]?.type, "auth");
  await peer.close();
  const request = signedSyncRequest(current);
  const response = await fetch(`${a.url}/v1/sync`, {
    method: "POST",
    headers: { "content-type": "application/json", ...request.headers },
    body: request.body,
  });
  const text = await response.text();
  assert.equal(response.status, 200);
  assert.equal(
    request.auth.checkResponse(
      response.headers.get(AUTH_HEADER),
      request.proof,
      text,
    ),
    true,
  );
  // The same request again is a replay.
  const replay = await fetch(`${a.url}/v1/sync`, {
    method: "POST",
    headers: { "content-type": "application/json", ...request.headers },
    body: request.body,
  });
  await replay.body?.cancel();
  assert.equal(replay.status, 401);

  const status = await a.status();
  assert.equal(
    status.counters["auth_failures{endpoint=gossip,reason=missing}"],
    1,
  );
  assert.equal(
    status.counters["auth_failures{endpoint=gossip,reason=unknown_key}"],
    2,
  );
  assert.equal(
    status.counters["auth_failures{endpoint=sync,reason=replayed}"],
    1,
  );
  const rejections = a.logs.filter((line) =>
    line.includes("peer request rejected")
  );
  assert.equal(rejections.length >= 5, true, "each rejection is logged");
  for (const instance of [a, b]) {
    const text = instance.logs.join("\n");
    assert.equal(text.includes(current), false, "no key in the logs");
    assert.equal(text.includes(retired), false, "no retired key in the logs");
  }
  // The fleet's own link kept working throughout.
  assert.equal((await b.status()).links.length, 1);
});

Deno.test("instances with other keys do not link", async () => {
  await using fleet = await TestFleet.start(1, {
    env: { GRAPEVINE_FLEET_KEYS: randomSecret() },
  });
  const outsider = await fleet.add(
    "outsider",
    [fleet.instances[0]!.url],
    [],
    undefined,
    { GRAPEVINE_FLEET_KEYS: randomSecret() },
  );
  await outsider.client.put("outsider.key", 1);
  await delay(1500);
  const inside = await fleet.instances[0]!.status();
  const outside = await outsider.status();
  assert.equal(inside.links.length, 0);
  assert.equal(outside.links.length, 0);
  assert.equal(inside.entries, 0, "no entry crossed over");
  assert.ok(
    outsider.logs.some((line) => line.includes("dial rejected")),
    "the dialler logs the rejection",
  );
});

Deno.test("open dialler cannot reach a keyed fleet", async () => {
  await using fleet = await TestFleet.start(1, {
    env: { GRAPEVINE_FLEET_KEYS: randomSecret() },
  });
  const open = await fleet.add(
    "open",
    [fleet.instances[0]!.url],
    [],
    undefined,
    {
      GRAPEVINE_FLEET_KEYS: "",
    },
  );
  assert.ok(
    open.logs.some((line) => line.includes("no fleet keys")),
    "an open instance warns at start",
  );
  await delay(1000);
  assert.equal((await open.status()).links.length, 0);
});

Deno.test("key rotation loses no update", async () => {
  const oldKey = randomSecret();
  const newKey = randomSecret();
  await using fleet = await TestFleet.start(3, {
    env: { GRAPEVINE_FLEET_KEYS: oldKey },
  });
  await fleet.waitConverged();

  const acknowledged: string[] = [];
  let writing = true;
  let written = 0;
  const writer = (async () => {
    // Bounded: at most 2000 writes, and only while the rotation runs.
    for (let i = 0; writing && i < 2000; i++) {
      const target = fleet.instances[i % fleet.instances.length]!;
      const key = `rotation.${i}`;
      try {
        await target.client.put(key, i);
        acknowledged.push(key);
      } catch {
        // The instance is restarting; the write was not acknowledged.
      }
      written++;
      await delay(20);
    }
  })();

  const phases = [`${oldKey},${newKey}`, `${newKey},${oldKey}`, newKey];
  for (const keys of phases) {
    for (const instance of [...fleet.instances]) {
      await instance.stop();
      const next = await fleet.restart(instance, {
        port: instance.port,
        env: { GRAPEVINE_FLEET_KEYS: keys },
      });
      await next.client.put(`phase.${keys.length}.${next.options.id}`, 1);
      acknowledged.push(`phase.${keys.length}.${next.options.id}`);
    }
  }
  writing = false;
  await writer;
  assert.ok(written > 20, `the writer ran (${written} writes)`);

  const reports = await fleet.waitConverged({ timeoutMs: 20_000 });
  for (const instance of fleet.instances) {
    const keys = new Set(
      (await instance.client.list()).map((entry) => entry.key),
    );
    const missing = acknowledged.filter((key) => !keys.has(key));
    assert.deepEqual(missing, [], `${instance.options.id} lost updates`);
  }
  for (const report of reports) {
    assert.ok(report.links.length > 0, `${report.id} is linked on the new key`);
  }
  // The old key is retired everywhere now.
  await assert.rejects(
    RawPeer.connect(fleet.instances[0]!.url, { keys: oldKey }),
    /401/,
  );
});
