import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { GrapevineClient } from "../lib/client.ts";
import { FaultProxy } from "../lib/chaos/fault_proxy.ts";
import {
  applyRegionLatency,
  regionDelayMs,
  uniformLatency,
} from "../lib/chaos/region_latency.ts";
import { parseManifest } from "../lib/manifest.ts";
import { runCli } from "./helpers/cli.ts";
import { delay } from "./helpers/process.ts";
import { waitForUpdate } from "./helpers/updates.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

const DELAY_MS = 100;

Deno.test("regionDelayMs reads pairs in either order", () => {
  const latency = parseManifest(
    `
fleet: t
region_latency:
  default_ms: 30
  pairs:
    - { regions: [eu, us], ms: 80 }
regions:
  - { name: eu, instances: [{ id: e1, port: 9001 }] }
  - { name: us, instances: [{ id: u1, port: 9002 }] }
  - { name: ap, instances: [{ id: a1, port: 9003 }] }
`,
    "m.yml",
  ).region_latency!;
  assert.equal(regionDelayMs(latency, "eu", "us"), 80);
  assert.equal(regionDelayMs(latency, "us", "eu"), 80);
  assert.equal(regionDelayMs(latency, "eu", "ap"), 30);
  assert.equal(regionDelayMs(latency, "eu", "eu"), 0);
  assert.equal(latency.enabled, false);
});

Deno.test("applyRegionLatency delays cross-region pairs both ways", async () => {
  const proxy = new FaultProxy();
  try {
    const delayed = applyRegionLatency(proxy, [
      { name: "e1", region: "eu" },
      { name: "e2", region: "eu" },
      { name: "u1", region: "us" },
    ], uniformLatency(70));
    assert.equal(delayed, 4);
    assert.equal(proxy.faultOf("e1", "u1").delayMs, 70);
    assert.equal(proxy.faultOf("u1", "e2").delayMs, 70);
    assert.equal(proxy.faultOf("e1", "e2").delayMs, undefined);
    assert.equal(proxy.faultOf("?", "u1").delayMs, undefined);
  } finally {
    await proxy.close();
  }
});

/** Returns `count` ports that are free on 127.0.0.1 right now. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => listener.addr.port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** `main.ts fleet` as a child process, with its output kept. */
class FleetProcess {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  readonly #ready = Promise.withResolvers<void>();

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, "-A", MAIN, "fleet", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#drained = Promise.all([
      this.#collect(this.#child.stdout),
      this.#collect(this.#child.stderr),
    ]).then(() =>
      this.#ready.reject(new Error(`fleet exited:\n${this.lines.join("\n")}`))
    );
  }

  /** Resolves once the fleet printed its ready line. */
  async ready(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`fleet not ready in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#ready.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the fleet with SIGTERM (SIGKILL after 15 s); returns its exit code. */
  async stop(): Promise<number> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 15_000);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#drained;
    return status.code;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buffered = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        this.lines.push(line);
        if (/^fleet \S+ ready: 4 of 4/.test(line)) this.#ready.resolve();
      }
    }
  }
}

Deno.test("fleet --region-latency delays only cross-region traffic", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-regions-" });
  const [e1, e2, u1, u2] = freePorts(4);
  const manifestPath = `${dir}/deploy.yml`;
  await Deno.writeTextFile(
    manifestPath,
    `
fleet: latency-test
preset: local
data_dir: data
regions:
  - name: eu
    instances: [{ id: eu-1, port: ${e1} }, { id: eu-2, port: ${e2} }]
  - name: us
    instances: [{ id: us-1, port: ${u1} }, { id: us-2, port: ${u2} }]
`,
  );
  const fleet = new FleetProcess([
    "--manifest",
    manifestPath,
    "--region-latency",
    String(DELAY_MS),
    "--log-format",
    "json",
  ]);
  try {
    await fleet.ready(60_000);
    const instances = [
      ["eu-1", e1],
      ["eu-2", e2],
      ["us-1", u1],
      ["us-2", u2],
    ].map(([name, port]) => ({
      name: String(name),
      client: new GrapevineClient(`http://127.0.0.1:${port}`),
    }));
    const writer = instances[0]!.client;
    // The first write waits for links and membership to settle.
    const first = await writer.put("latency.warmup", 0);
    await waitForUpdate(instances, `latency.warmup@${first.version}`, 30_000);
    await delay(1000);

    const clientMs: number[] = [];
    const sameRegion: number[] = [];
    const otherRegion: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const { version } = await writer.put(`latency.k${i}`, i);
      clientMs.push(performance.now() - started);
      const arrivals = await waitForUpdate(
        instances,
        `latency.k${i}@${version}`,
      );
      sameRegion.push(arrivals.get("eu-2")!);
      otherRegion.push(arrivals.get("us-1")!, arrivals.get("us-2")!);
    }

    // Both clocks round to whole milliseconds, so allow 2 ms of rounding.
    for (const ms of otherRegion) {
      assert.ok(ms >= DELAY_MS - 2, `cross-region arrivals: ${otherRegion}`);
    }
    const sorted = [...sameRegion].sort((a, b) => a - b);
    assert.ok(
      sorted[2]! < DELAY_MS / 2,
      `same-region arrivals well below ${DELAY_MS} ms: ${sameRegion}`,
    );
    // A delayed client write would take two delays, request and response.
    assert.ok(
      Math.min(...clientMs) < DELAY_MS,
      `client writes are not delayed: ${clientMs.map(Math.round)}`,
    );
    assert.ok(
      fleet.lines.some((line) => line.includes("eu <-> us: 100 ms one way")),
      "the fleet prints the delays",
    );
  } catch (error) {
    console.error(fleet.lines.slice(-200).join("\n"));
    throw error;
  } finally {
    const code = await fleet.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    assert.equal(code, 0, "fleet stops cleanly on SIGTERM");
  }
  // The proxy routes are closed: the manifest ports are free again.
  for (const port of [e1, e2, u1, u2]) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: port! });
    listener.close();
  }
});

Deno.test("fleet --regions needs region_latency in the manifest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grapevine-regions-" });
  try {
    const path = `${dir}/deploy.yml`;
    await Deno.writeTextFile(
      path,
      "fleet: t\nregions:\n  - { name: eu, instances: [{ id: e1, port: 9001 }] }\n",
    );
    const result = await runCli(["fleet", "--manifest", path, "--regions"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--regions needs a region_latency section/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
