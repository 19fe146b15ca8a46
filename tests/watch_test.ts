import assert from "node:assert/strict";
import {
  type ChangeMessage,
  GrapevineClient,
  readServerSentEvents,
  type WatchMessage,
  type WatchOptions,
} from "../lib/client.ts";
import { parseEventId } from "../lib/http/watch.ts";
import { runCli } from "./helpers/cli.ts";
import { TestFleet } from "./helpers/process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

/** Reads messages from a watch until `until` returns true or time runs out. */
async function collect(
  iterator: AsyncIterator<WatchMessage>,
  until: (messages: WatchMessage[]) => boolean,
  timeoutMs: number,
): Promise<WatchMessage[]> {
  const messages: WatchMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!until(messages)) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new Error(
        `Timed out after ${timeoutMs} ms; received:\n${
          messages.map((message) => JSON.stringify(message)).join("\n")
        }`,
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), remaining);
    });
    const next = await Promise.race([iterator.next(), timeout]);
    clearTimeout(timer);
    if (next === "timeout") continue;
    if (next.done) break;
    messages.push(next.value);
  }
  return messages;
}

/** Starts a watch; `stop()` aborts it and waits for it to end. */
function startWatch(
  client: GrapevineClient,
  prefix: string,
  options: WatchOptions = {},
) {
  const controller = new AbortController();
  const iterator = client.watch(prefix, {
    ...options,
    signal: controller.signal,
  })[Symbol.asyncIterator]();
  const stop = async () => {
    controller.abort();
    await iterator.return(undefined);
  };
  return { iterator, stop };
}

function changes(messages: WatchMessage[]): ChangeMessage[] {
  return messages.filter((message): message is ChangeMessage =>
    message.type === "change"
  );
}

Deno.test("parseEventId reads epoch and sequence", () => {
  assert.equal(parseEventId("ab12:7", "ab12"), 7);
  assert.equal(parseEventId("ab12:0", "ab12"), 0);
  assert.equal(parseEventId("other:7", "ab12"), "other_epoch");
  assert.equal(parseEventId(undefined, "ab12"), undefined);
  assert.equal(parseEventId("", "ab12"), undefined);
  assert.equal(parseEventId("no-colon", "ab12"), undefined);
  assert.equal(parseEventId("ab12:-1", "ab12"), undefined);
  assert.equal(parseEventId("ab12:x", "ab12"), undefined);
});

Deno.test("readServerSentEvents parses fields and comments", async () => {
  const text =
    ': comment\r\nevent: change\nid: e:1\ndata: {"a":\ndata: 1}\n\n' +
    "data: plain\n\nid: e:2\nevent: ready\ndata:x\n\n";
  const body = new Blob([text]).stream();
  const events = [];
  for await (const event of readServerSentEvents(body.getReader())) {
    events.push(event);
  }
  assert.deepEqual(events, [
    { event: "change", data: '{"a":\n1}', id: "e:1" },
    { event: "message", data: "plain", id: "e:1" },
    { event: "ready", data: "x", id: "e:2" },
  ]);
});

Deno.test("watcher sees a write made on another instance", async () => {
  await using fleet = await TestFleet.start(3);
  const [watched, , writer] = fleet.instances;
  const { iterator, stop } = startWatch(watched!.client, "features.");
  try {
    await collect(iterator, (got) => got.some((m) => m.type === "ready"), 5000);
    const started = Date.now();
    const put = await writer!.client.put("features.checkout", { on: true });
    await writer!.client.put("other.key", 1);
    const got = await collect(iterator, (m) => changes(m).length >= 1, 5000);
    const [change] = changes(got);
    assert.equal(change!.key, "features.checkout");
    assert.deepEqual(change!.value, { on: true });
    assert.equal(change!.version, put.version);
    assert.equal(change!.update, `features.checkout@${put.version}`);
    assert.notEqual(change!.source, "local");
    assert.ok(change!.from, "a remote change names its sender");
    assert.ok(Date.now() - started < 2000, "arrived within 2 s");
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  } finally {
    await stop();
  }
});

Deno.test("watcher receives missed changes after a forced reconnect", async () => {
  await using fleet = await TestFleet.start(2);
  const [watched, writer] = fleet.instances;
  const proxy = TcpProxy.start(watched!.port);
  const client = new GrapevineClient(proxy.url);
  const { iterator, stop } = startWatch(client, "", {
    retryMinMs: 50,
    retryMaxMs: 200,
  });
  try {
    await collect(iterator, (got) => got.some((m) => m.type === "ready"), 5000);
    await writer!.client.put("before", 0);
    const first = await collect(iterator, (m) => changes(m).length >= 1, 5000);
    assert.equal(changes(first)[0]!.key, "before");

    // Cut the stream and keep it cut while three more writes spread.
    proxy.paused = true;
    proxy.dropAll();
    for (let i = 1; i <= 3; i++) await writer!.client.put(`missed.${i}`, i);
    await writer!.client.delete("before");
    await fleet.waitConverged({ entries: 3 });
    proxy.paused = false;

    const after = await collect(
      iterator,
      (m) => changes(m).length >= 4 && m.some((one) => one.type === "ready"),
      10_000,
    );
    assert.ok(
      after.every((message) => message.type !== "reset"),
      "the missed changes were replayed, not reset",
    );
    const readies = after.filter((message) => message.type === "ready");
    assert.equal(readies.length, 1, "the watch reconnected once");
    const replayed = changes(after).map((change) =>
      `${change.key}${change.deleted ? " deleted" : ""}`
    );
    assert.deepEqual(replayed.toSorted(), [
      "before deleted",
      "missed.1",
      "missed.2",
      "missed.3",
    ]);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  } finally {
    await stop();
    await proxy.close();
  }
});

Deno.test("watcher re-lists after the instance restarts", async () => {
  await using fleet = await TestFleet.start(1);
  const only = fleet.instances[0]!;
  await only.client.put("kept", "v1");
  const client = new GrapevineClient(only.url);
  const { iterator, stop } = startWatch(client, "", {
    list: true,
    retryMinMs: 50,
    retryMaxMs: 200,
  });
  try {
    const first = await collect(
      iterator,
      (got) => got.some((m) => m.type === "reset"),
      5000,
    );
    const initial = first.find((m) => m.type === "reset");
    assert.equal(initial?.type === "reset" && initial.entries.length, 1);

    await only.kill();
    const restarted = await fleet.restart(only, { port: only.port });
    await restarted.client.put("written.after", 2);
    const got = await collect(
      iterator,
      (m) => m.some((message) => message.type === "reset"),
      10_000,
    );
    const reset = got.find((message) => message.type === "reset");
    assert.ok(reset?.type === "reset");
    assert.match(reset.reason, /restarted/);
    assert.deepEqual(reset.entries.map((entry) => entry.key).sort(), [
      "kept",
      "written.after",
    ]);
  } catch (error) {
    fleet.dumpLogs();
    throw error;
  } finally {
    await stop();
  }
});

Deno.test("watch command prints changes and resumes by id", async () => {
  await using fleet = await TestFleet.start(1);
  const url = fleet.instances[0]!.url;
  const client = fleet.instances[0]!.client;
  await client.put("app.a", 1);
  await client.put("app.b", 2);
  await client.put("other", 3);

  // Read this process's epoch from a ready event, then resume from
  // sequence 0: the two changes under the prefix are replayed.
  const status = await fetch(`${url}/v1/watch`, {
    headers: { "last-event-id": "x:0" },
  });
  const reader = status.body!.getReader();
  let epoch = "";
  for await (const event of readServerSentEvents(reader)) {
    if (event.event === "ready") {
      epoch = JSON.parse(event.data).epoch;
      break;
    }
  }
  await reader.cancel();

  const result = await runCli([
    "watch",
    "app.",
    "--url",
    url,
    "--last-event-id",
    `${epoch}:0`,
    "--count",
    "2",
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.equal(lines.length, 2, result.stdout);
  assert.match(lines[0]!, /app\.a = 1 \(version \d+\.\d+\.n1, local\)/);
  assert.match(lines[1]!, /app\.b = 2 /);

  // An id ahead of the feed gets a reset, not silence.
  const ahead = await fetch(`${url}/v1/watch`, {
    headers: { "last-event-id": `${epoch}:999999` },
  });
  const aheadReader = ahead.body!.getReader();
  const first = await readServerSentEvents(aheadReader).next();
  await aheadReader.cancel();
  assert.equal(first.value?.event, "reset");
  assert.match(first.value?.data ?? "", /ahead of this instance's feed/);
});
