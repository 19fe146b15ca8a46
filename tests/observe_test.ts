import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { readServerSentEvents } from "../lib/client.ts";
import type { UpdateReport } from "../lib/update_tracker.ts";
import { waitFor } from "./helpers/chaos.ts";
import { runCli } from "./helpers/cli.ts";
import { TestFleet } from "./helpers/process.ts";

interface MetricFamily {
  name: string;
  type: string;
  help: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
  }[];
}

async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  const families = parsePrometheusTextFormat(
    await response.text(),
  ) as MetricFamily[];
  return new Map(families.map((family) => [family.name, family]));
}

function value(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name);
  const sample = family?.metrics.find((metric) =>
    Object.entries(labels).every(([key, want]) => metric.labels?.[key] === want)
  );
  return sample?.value === undefined ? undefined : Number(sample.value);
}

/** Sends one frame that is not JSON to an instance's /gossip endpoint. */
async function sendInvalidFrame(url: string): Promise<void> {
  const socket = new WebSocket(url.replace("http://", "ws://") + "/gossip");
  const closed = new Promise((resolve) => socket.onclose = resolve);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  socket.send("this is not a frame");
  await closed;
}

Deno.test("metrics parse as Prometheus text", async () => {
  await using fleet = await TestFleet.start(3);
  try {
    const [a, b] = fleet.instances;
    // Under load b could learn every write through HTTP anti-entropy before
    // any link is up, and then it counts no rumor frame.
    await waitFor(async () => {
      const reports = await Promise.all(
        fleet.instances.map((instance) => instance.status()),
      );
      return reports.every((report) => report.links.length > 0);
    }, "every instance has a peer link");
    for (let i = 0; i < 5; i++) await a!.client.put(`metric.${i}`, i);
    await fleet.waitConverged({ entries: 5 });
    await sendInvalidFrame(b!.url);

    const families = await scrape(b!.url);
    const expected: [string, string][] = [
      ["grapevine_frames_in_total", "counter"],
      ["grapevine_frames_out_total", "counter"],
      ["grapevine_rumors_active", "gauge"],
      ["grapevine_rumor_shares_total", "counter"],
      ["grapevine_duplicates_received_total", "counter"],
      ["grapevine_sync_sessions_total", "counter"],
      ["grapevine_sync_rounds_total", "counter"],
      ["grapevine_sync_bytes_total", "counter"],
      ["grapevine_members", "gauge"],
      ["grapevine_links", "gauge"],
      ["grapevine_entries", "gauge"],
      ["grapevine_kv_commit_duration_seconds", "histogram"],
      ["grapevine_invalid_frames_total", "counter"],
    ];
    for (const [name, type] of expected) {
      const family = families.get(name);
      assert.ok(family, `${name} is exported`);
      assert.equal(family.type, type.toUpperCase(), name);
      assert.ok(family.help.length > 10, `${name} has help text`);
    }
    assert.ok(
      value(families, "grapevine_frames_in_total", { type: "rumor" })! > 0,
    );
    assert.ok(
      value(families, "grapevine_frames_out_total", { type: "hello" })! > 0,
    );
    assert.equal(
      value(families, "grapevine_invalid_frames_total", {
        kind: "invalid_json",
      }),
      1,
    );
    // Membership may still be spreading, so b lists at least itself and a.
    const alive = value(families, "grapevine_members", { state: "alive" });
    assert.ok(alive! >= 2, `${alive} members alive`);
    assert.equal(value(families, "grapevine_entries", { kind: "live" }), 5);
    assert.equal(value(families, "grapevine_updates_applied_total", {}), 5);

    const writer = await scrape(a!.url);
    assert.ok(value(writer, "grapevine_rumor_shares_total")! >= 5);
    const commits = writer.get("grapevine_kv_commit_duration_seconds")!;
    assert.ok(Number(commits.metrics[0]!.count) >= 5, "every write committed");
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("status --update shows every instance", async () => {
  await using fleet = await TestFleet.start(3);
  try {
    const [a, b, c] = ["n1", "n2", "n3"].map((id) => fleet.get(id));
    const put = await b!.client.put("tracked.key", { v: 1 });
    const id = `tracked.key@${put.version}`;
    const urls = fleet.instances.map((instance) => instance.url).join(",");

    const result = await runCli([
      "status",
      "--update",
      id,
      "--urls",
      urls,
      "--wait",
      "10",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`3 of 3 instances have ${id.replaceAll(".", "\\.")}`),
    );
    for (const name of ["n1", "n2", "n3"]) {
      assert.match(result.stdout, new RegExp(`^${name} `, "m"));
    }

    const json = await runCli([
      "status",
      "--update",
      id,
      "--urls",
      urls,
      "--json",
    ]);
    const rows = JSON.parse(json.stdout).instances as {
      report: UpdateReport;
    }[];
    const byId = new Map(rows.map((row) => [row.report.instance, row.report]));
    assert.equal(byId.get("n2")!.source, "local");
    assert.equal(byId.get("n2")!.from, null);
    for (const report of byId.values()) {
      assert.ok(["spreading", "done"].includes(report.state), report.state);
      assert.equal(report.current_version, put.version);
      assert.ok(
        report.applied_after_ms !== null && report.applied_after_ms >= 0,
      );
    }
    for (const name of ["n1", "n3"]) {
      assert.ok(["rumor", "pull", "push"].includes(byId.get(name)!.source!));
      assert.ok(byId.get(name)!.from, `${name} names the sender`);
    }

    // A newer write supersedes the tracked one everywhere.
    await a!.client.put("tracked.key", { v: 2 });
    await fleet.waitConverged({ entries: 1 });
    const newer = await c!.client.update(id);
    assert.equal(newer.state, "superseded");

    const unknown = `tracked.key@${Date.now() + 60_000}.0.n9`;
    const missing = await runCli([
      "status",
      "--update",
      unknown,
      "--urls",
      urls,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /0 of 3 instances have/);
    assert.match(missing.stdout, /not_received/);

    const invalid = await runCli([
      "status",
      "--update",
      "no-version",
      "--urls",
      urls,
    ]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /Invalid update id "no-version"/);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  }
});

Deno.test("update report rejects malformed ids", async () => {
  await using fleet = await TestFleet.start(1);
  const url = fleet.instances[0]!.url;
  for (const id of ["k", "k@1.2", "@1.0.n1", "k@x.0.n1"]) {
    const response = await fetch(`${url}/v1/updates/${id}`);
    const body = await response.json();
    assert.equal(response.status, 400, id);
    assert.equal(body.error.code, "invalid_update_id", id);
  }
});

Deno.test("events stream starts with recent updates", async () => {
  await using fleet = await TestFleet.start(1);
  const instance = fleet.instances[0]!;
  const put = await instance.client.put("seen.before", true);
  const controller = new AbortController();
  const response = await fetch(`${instance.url}/v1/events`, {
    headers: { origin: "http://dashboard.example" },
    signal: controller.signal,
  });
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  const reader = response.body!.getReader();
  const events = readServerSentEvents(reader);
  try {
    const hello = (await events.next()).value!;
    assert.equal(hello.event, "hello");
    const data = JSON.parse(hello.data);
    assert.equal(data.instance, "n1");
    assert.equal(data.updates[0].update, `seen.before@${put.version}`);

    const second = await instance.client.put("seen.after", 1);
    const update = (await events.next()).value!;
    assert.equal(update.event, "update");
    const report = JSON.parse(update.data) as UpdateReport;
    assert.equal(report.update, `seen.after@${second.version}`);
    assert.equal(report.state, "spreading", "a lone instance keeps its rumor");
  } finally {
    controller.abort();
    await reader.cancel().catch(() => {});
  }
});
