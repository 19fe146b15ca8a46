import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { GrapevineClient } from "../lib/client.ts";
import { delay } from "./helpers/process.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

Deno.test("OpenTelemetry export sends metrics and logs", async () => {
  // An OTLP/HTTP receiver with JSON bodies, on loopback.
  const bodies: { path: string; body: string }[] = [];
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      bodies.push({
        path: new URL(request.url).pathname,
        body: await request.text(),
      });
      return Response.json({});
    },
  );
  const dir = await Deno.makeTempDir({ prefix: "grapevine-otel-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "-A",
      MAIN,
      "serve",
      "--id",
      "otel-1",
      "--port",
      "0",
      "--kv-path",
      `${dir}/otel-1.kv`,
    ],
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
      OTEL_METRIC_EXPORT_INTERVAL: "200",
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream());
  const logs: string[] = [];
  const reading = (async () => {
    for await (const chunk of stderr) logs.push(chunk);
  })();
  try {
    let url: string | undefined;
    for (let i = 0; i < 100 && !url; i++) {
      await delay(100);
      url = /"url":"(http:[^"]+)"/.exec(logs.join(""))?.[1];
    }
    assert.ok(url, `instance started: ${logs.join("")}`);
    await new GrapevineClient(url).put("otel.key", 1);

    const has = (path: string, text: string) =>
      bodies.some((item) => item.path === path && item.body.includes(text));
    for (let i = 0; i < 50; i++) {
      if (
        has("/v1/metrics", "grapevine.updates_applied") &&
        has("/v1/logs", "instance started")
      ) break;
      await delay(100);
    }
    assert.ok(
      has("/v1/metrics", "grapevine.updates_applied"),
      "counters exported as metrics",
    );
    assert.ok(has("/v1/logs", "instance started"), "log lines exported");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await reading;
    await receiver.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
