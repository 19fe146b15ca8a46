import assert from "node:assert/strict";
import {
  encodeFrame,
  type Frame,
  type FrameOf,
  parseFrame,
} from "../lib/protocol/messages.ts";
import {
  negotiateVersion,
  parseVersionRange,
  PROTOCOL_HEADER,
} from "../lib/protocol/versions.ts";
import { delay, TestFleet, type TestInstance } from "./helpers/process.ts";
import { RawPeer } from "./helpers/raw_peer.ts";

const SIG = "A".repeat(86);

const RUMOR: FrameOf<"rumor"> = {
  v: 1,
  type: "rumor",
  entries: [
    { key: "features.a", value: "true", version: [1_733_300_000_000, 0, "n1"] },
    { key: "features.b", value: null, version: [1_733_300_000_001, 3, "n2"] },
    {
      key: "features.c",
      value: '{"on":1}',
      version: [1_733_300_000_002, 0, "n3"],
      sig: SIG,
    },
  ],
  updates: [{
    id: "n1",
    region: "eu",
    url: "http://127.0.0.1:8001",
    incarnation: 5,
    state: "alive",
  }],
};

Deno.test("version 2 rumor is compact and reads back", () => {
  const v1 = encodeFrame(RUMOR, 1);
  const v2 = encodeFrame(RUMOR, 2);
  // 26 bytes of field names and brackets per entry, 6 more with a signature.
  assert.equal(v1.length - v2.length, 3 * 26 + 6);
  assert.ok(Array.isArray(JSON.parse(v2).entries[0]));

  const parsed = parseFrame(v2, 1 << 20);
  assert.ok(parsed.ok, !parsed.ok ? parsed.message : "");
  assert.deepEqual(parsed.frame, { ...RUMOR, v: 2 });
  const old = parseFrame(v1, 1 << 20);
  assert.ok(old.ok);
  assert.deepEqual(old.frame, RUMOR);
});

Deno.test("encodeFrame relabels other frames", () => {
  const ping: Frame = { v: 1, type: "ping", seq: 4 };
  assert.equal(encodeFrame(ping, 2), '{"v":2,"type":"ping","seq":4}');
  assert.equal(encodeFrame(ping), '{"v":1,"type":"ping","seq":4}');
});

Deno.test("parseFrame keeps each version strict", () => {
  const cases: [string, string, number, string][] = [
    [
      "version 2 above the maximum",
      '{"v":2,"type":"ping","seq":1}',
      1,
      "unsupported_version",
    ],
    ["version 0", '{"v":0,"type":"ping","seq":1}', 2, "unsupported_version"],
    [
      "object entries in version 2",
      encodeFrame(RUMOR, 1).replace('"v":1', '"v":2'),
      2,
      "invalid_fields",
    ],
    [
      "array entries in version 1",
      encodeFrame(RUMOR, 2).replace('"v":2', '"v":1'),
      2,
      "invalid_fields",
    ],
    [
      "entry of four items",
      '{"v":2,"type":"rumor","entries":[["k","1",5,0]]}',
      2,
      "invalid_fields",
    ],
    [
      "unknown field",
      '{"v":2,"type":"ping","seq":1,"extra":true}',
      2,
      "invalid_fields",
    ],
  ];
  for (const [name, text, maxVersion, kind] of cases) {
    const result = parseFrame(text, 1 << 20, maxVersion);
    assert.equal(result.ok, false, name);
    assert.equal(!result.ok && result.kind, kind, name);
  }
});

Deno.test("version ranges parse and negotiate", () => {
  assert.deepEqual(parseVersionRange(undefined), { min: 1, max: 1 });
  assert.deepEqual(parseVersionRange("1-2"), { min: 1, max: 2 });
  for (const invalid of ["2-1", "0-2", "2", "1-2-3", "a-b", ""]) {
    assert.equal(parseVersionRange(invalid), undefined, invalid);
  }
  const cases: [[number, number], [number, number], number | undefined][] = [
    [[1, 2], [1, 1], 1],
    [[1, 1], [1, 2], 1],
    [[1, 2], [1, 2], 2],
    [[1, 2], [2, 3], 2],
    [[1, 1], [2, 3], undefined],
  ];
  for (const [[ownMin, ownMax], [peerMin, peerMax], expected] of cases) {
    assert.equal(
      negotiateVersion(
        { min: ownMin, max: ownMax },
        { min: peerMin, max: peerMax },
      ),
      expected,
      `${ownMin}-${ownMax} with ${peerMin}-${peerMax}`,
    );
  }
});

/** Writes a key on `writer` and returns the first rumor the peer receives. */
async function rumorOnWire(
  writer: TestInstance,
  peer: RawPeer,
  key: string,
): Promise<Record<string, unknown>> {
  await writer.client.put(key, { on: true });
  for (let i = 0; i < 100; i++) {
    const rumor = (peer.received as unknown as Record<string, unknown>[])
      .find((frame) => frame.type === "rumor");
    if (rumor) return rumor;
    await delay(20);
  }
  throw new Error(`no rumor of ${key} reached the raw peer`);
}

Deno.test("links speak the highest common version", async () => {
  await using fleet = await TestFleet.start(1);
  const instance = fleet.instances[0]!;
  const current = await RawPeer.connect(instance.url, {
    headers: { [PROTOCOL_HEADER]: "1-2" },
  });
  const old = await RawPeer.connect(instance.url);
  try {
    assert.equal(current.received.find((f) => f.type === "hello")?.v, 2);
    assert.equal(old.received.find((f) => f.type === "hello")?.v, 1);

    const compact = await rumorOnWire(instance, current, "wire.k");
    assert.equal(compact.v, 2);
    assert.ok(Array.isArray((compact.entries as unknown[])[0]));
    const plain = await rumorOnWire(instance, old, "wire.k");
    assert.equal(plain.v, 1);
    assert.equal((plain.entries as { key: string }[])[0]!.key, "wire.k");

    const status = await instance.status();
    const versions = status.links.map((link) => link.protocol).sort();
    assert.deepEqual(versions, [1, 2]);
    assert.equal(status.protocol, 2);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  } finally {
    await current.close();
    await old.close();
  }
});

Deno.test("dial without a common version is rejected", async () => {
  await using fleet = await TestFleet.start(1, {
    flags: ["--max-protocol-version", "1"],
  });
  const instance = fleet.instances[0]!;
  await assert.rejects(
    RawPeer.connect(instance.url, { headers: { [PROTOCOL_HEADER]: "2-3" } }),
  );
  const response = await fetch(`${instance.url}/gossip`, {
    headers: {
      upgrade: "websocket",
      connection: "upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      [PROTOCOL_HEADER]: "2-3",
    },
  });
  const body = await response.json();
  assert.equal(response.status, 400);
  assert.equal(body.error.code, "unsupported_protocol");
  assert.match(body.error.message, /this instance speaks 1-1, the dialler 2-3/);
  const status = await instance.status();
  assert.equal(
    status.counters["requests_rejected{reason=unsupported_protocol}"],
    2,
  );
});

/** Polls until every link of every instance is up with the expected version. */
async function waitLinkVersions(
  instances: readonly TestInstance[],
  expected: (a: string, b: string) => number,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problems: string[] = [];
  while (Date.now() < deadline) {
    problems = [];
    for (const instance of instances) {
      const status = await instance.status();
      for (const link of status.links) {
        const want = expected(status.id, link.peer);
        if (link.protocol !== want) {
          problems.push(
            `${status.id} -> ${link.peer}: ${link.protocol}, expected ${want}`,
          );
        }
      }
    }
    if (problems.length === 0) return;
    await delay(200);
  }
  throw new Error(`link versions:\n${problems.join("\n")}`);
}

Deno.test("fleet at versions 1 and 2 converges", async () => {
  await using fleet = await TestFleet.start(4, {
    flags: ["--log-level", "info"],
  });
  try {
    // n3 and n4 act as version 1 builds: they accept and send version 1 only.
    for (const id of ["n3", "n4"]) {
      await fleet.get(id).stop();
      await fleet.restart(fleet.get(id), {
        seeds: [fleet.get("n1").url],
        flags: ["--log-level", "info", "--max-protocol-version", "1"],
      });
    }
    const old = new Set(["n3", "n4"]);
    for (const [index, instance] of fleet.instances.entries()) {
      await instance.client.put(`mixed.k${index}`, index);
    }
    const reports = await fleet.waitConverged({ entries: 4 });
    await waitLinkVersions(
      fleet.instances,
      (a, b) => old.has(a) || old.has(b) ? 1 : 2,
    );

    const status = await fleet.get("n2").status();
    const peers = status.links.map((link) => link.peer);
    assert.ok(
      peers.some((peer) => old.has(peer)),
      `n2 links to a version 1 instance: ${peers}`,
    );
    for (const report of reports) {
      const invalid = Object.keys(report.counters).filter((name) =>
        name.startsWith("invalid_frames")
      );
      assert.deepEqual(invalid, [], `${report.id} dropped no frame`);
    }
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});
