import assert from "node:assert/strict";
import { randomSecret } from "../lib/cli/keygen.ts";
import { GrapevineClient } from "../lib/client.ts";
import type { Version } from "../lib/protocol/clock.ts";
import type { Entry } from "../lib/protocol/entry.ts";
import { AUTH_HEADER, FleetAuth, Keyring } from "../lib/security/fleet_auth.ts";
import {
  EntryVerifier,
  generatePublisherKey,
  PublisherSigner,
} from "../lib/security/signatures.ts";
import { delay, TestFleet, type TestInstance } from "./helpers/process.ts";
import { RawPeer } from "./helpers/raw_peer.ts";

Deno.test("signatures cover key, version and value", async () => {
  const pair = await generatePublisherKey();
  const signer = await PublisherSigner.fromPrivateKey(pair.privateKey);
  const verifier = await EntryVerifier.fromPublicKeys([pair.publicKey]);
  const other = await EntryVerifier.fromPublicKeys([
    (await generatePublisherKey()).publicKey,
  ]);
  const entry = await signer.sign("features.x", '{"on":true}');
  const deletion = await signer.sign("features.x", null);

  assert.equal(entry.version[2], signer.nodeId);
  assert.equal(await verifier.verify(entry), undefined);
  assert.equal(await verifier.verify(deletion), undefined);
  assert.equal(await other.verify(entry), "bad_signature");
  assert.equal(
    await verifier.verify({ ...entry, value: "1" }),
    "bad_signature",
  );
  assert.equal(await verifier.verify({ ...entry, key: "y" }), "bad_signature");
  const later: Version = [entry.version[0] + 1, 0, entry.version[2]];
  assert.equal(
    await verifier.verify({ ...entry, version: later }),
    "bad_signature",
  );
  assert.equal(
    await verifier.verify({ ...deletion, value: entry.value }),
    "bad_signature",
  );
  const { sig: _, ...unsigned } = entry;
  assert.equal(await verifier.verify(unsigned), "unsigned");
});

Deno.test("verifier admits only the objects it checked", async () => {
  const pair = await generatePublisherKey();
  const signer = await PublisherSigner.fromPrivateKey(pair.privateKey);
  const verifier = await EntryVerifier.fromPublicKeys([pair.publicKey]);
  const good = await signer.sign("k", "1");
  const forged: Entry = { ...good, value: "2" };
  await verifier.admit([good, forged]);
  assert.equal(verifier.check(good), undefined);
  assert.equal(verifier.check(forged)?.reason, "bad_signature");
  assert.equal(verifier.check({ ...good })?.reason, "bad_signature");
  const { sig: _, ...bare } = good;
  assert.equal(verifier.check(bare)?.reason, "unsigned");
});

Deno.test("publisher key errors never show the key", async () => {
  await assert.rejects(
    PublisherSigner.fromPrivateKey("bm90LWEta2V5"),
    (error: Error) =>
      /not an Ed25519 private key/.test(error.message) &&
      !error.message.includes("bm90LWEta2V5"),
  );
});

async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await delay(50);
  }
}

function rejected(
  counters: Record<string, number>,
  reason: string,
): number {
  return counters[`entries_rejected{reason=${reason}}`] ?? 0;
}

Deno.test("instances merge only signed updates", async () => {
  const keys = randomSecret();
  const pair = await generatePublisherKey();
  await using fleet = await TestFleet.start(2, {
    env: { GRAPEVINE_FLEET_KEYS: keys },
    flags: ["--publisher-keys", pair.publicKey],
  });
  const [a, b] = fleet.instances as [TestInstance, TestInstance];
  const signer = await PublisherSigner.fromPrivateKey(pair.privateKey);
  const publisher = new GrapevineClient(a.url, { signer });

  // Signed writes, batches and deletes spread.
  await publisher.put("features.checkout", { enabled: true });
  await publisher.batch({ set: { "limits.rps": 100, "limits.burst": 200 } });
  await publisher.put("doomed", 1);
  await publisher.delete("doomed");
  await fleet.waitConverged({ entries: 3 });
  const copy = await b.client.get("features.checkout");
  assert.deepEqual(copy?.value, { enabled: true });
  assert.match(copy!.version, new RegExp(`\\.${signer.nodeId}$`));

  // Unsigned and wrongly signed client writes are rejected.
  await assert.rejects(a.client.put("features.checkout", false), {
    status: 403,
    code: "unsigned",
  });
  const response = await fetch(`${a.url}/v1/config/features.checkout`, {
    method: "PUT",
    headers: {
      "grapevine-version": `${Date.now()}.0.${signer.nodeId}`,
      "grapevine-signature": "A".repeat(86),
    },
    body: "false",
  });
  assert.equal(response.status, 403);
  assert.equal((await response.json()).error.code, "bad_signature");

  // A compromised instance holds the fleet key but not the publisher key.
  const good = await signer.sign("features.checkout", '{"enabled":true}');
  const now = Date.now();
  const forgeries: Entry[] = [
    { key: "features.checkout", value: "false", version: [now, 0, "evil"] },
    { ...good, value: "false", version: [now + 1, 0, signer.nodeId] },
    { ...good, version: [now + 2, 0, signer.nodeId] },
  ];
  const evil = await RawPeer.connect(a.url, { keys });
  evil.send({ v: 1, type: "rumor", entries: forgeries });
  // The same forgeries over HTTP anti-entropy.
  const auth = new FleetAuth(Keyring.parse(keys));
  const body = JSON.stringify({
    v: 1,
    from: "evil",
    body: { nodes: [], want: [], push: forgeries },
  });
  const proof = auth.dialProof("sync", body)!;
  const sync = await fetch(`${b.url}/v1/sync`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [AUTH_HEADER]: proof.header,
    },
    body,
  });
  await sync.body?.cancel();
  assert.equal(sync.status, 200);

  await waitFor(async () => {
    const counters = (await a.status()).counters;
    return rejected(counters, "unsigned") +
        rejected(counters, "bad_signature") >= 3;
  }, "the rumor forgeries are rejected");
  for (const instance of [a, b]) {
    const counters = (await instance.status()).counters;
    assert.equal(rejected(counters, "unsigned"), 1, instance.options.id);
    assert.equal(rejected(counters, "bad_signature"), 2, instance.options.id);
    const entry = await instance.client.get("features.checkout");
    assert.deepEqual(entry?.value, { enabled: true }, instance.options.id);
  }
  await evil.close();
  await fleet.waitConverged({ entries: 3 });

  // Signatures survive a restart: a new instance verifies what b kept.
  await b.stop();
  const restarted = await fleet.restart(b, { port: b.port });
  await a.kill();
  const fresh = await fleet.add(
    "n3",
    [restarted.url],
    ["--publisher-keys", pair.publicKey],
  );
  await fleet.waitConverged({
    entries: 3,
    instances: [restarted, fresh],
  });
  assert.equal(rejected((await fresh.status()).counters, "bad_signature"), 0);
});

Deno.test("far-future forged update cannot pin a key", async () => {
  const keys = randomSecret();
  await using fleet = await TestFleet.start(2, {
    env: { GRAPEVINE_FLEET_KEYS: keys },
  });
  const [a, b] = fleet.instances as [TestInstance, TestInstance];
  await a.client.put("pinned", "original");
  await fleet.waitConverged({ entries: 1 });

  const tenYears = 10 * 365 * 24 * 3600 * 1000;
  const evil = await RawPeer.connect(a.url, { keys });
  const farFuture: Entry[] = [
    {
      key: "pinned",
      value: '"forged"',
      version: [Date.now() + tenYears, 0, "evil"],
    },
    {
      key: "pinned",
      value: '"forged"',
      version: [Number.MAX_SAFE_INTEGER, 65535, "zzzz"],
    },
  ];
  evil.send({ v: 1, type: "rumor", entries: farFuture });
  await waitFor(
    async () => rejected((await a.status()).counters, "future_version") >= 2,
    "the far-future versions are rejected",
  );
  for (const instance of [a, b]) {
    assert.equal((await instance.client.get("pinned"))?.value, "original");
  }
  // The clock did not jump: a new write still gets a current version.
  const written = await a.client.put("pinned", "updated");
  const wall = Number(written.version.split(".")[0]);
  assert.ok(Math.abs(wall - Date.now()) < 60_000, `version ${written.version}`);

  // A forgery just inside the allowed drift wins only until the next write.
  evil.send({
    v: 1,
    type: "rumor",
    entries: [{
      key: "pinned",
      value: '"near-future"',
      version: [Date.now() + 30_000, 0, "evil"],
    }],
  });
  await waitFor(
    async () => (await b.client.get("pinned"))?.value === "near-future",
    "the near-future write spreads",
  );
  await b.client.put("pinned", "restored");
  await fleet.waitConverged({ entries: 1 });
  for (const instance of [a, b]) {
    assert.equal((await instance.client.get("pinned"))?.value, "restored");
  }
  await evil.close();
});
