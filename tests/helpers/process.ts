/**
 * Real Grapevine instances as child processes, for integration tests.
 *
 * Each instance runs `main.ts serve` on 127.0.0.1 with port 0 and a KV file
 * in a temporary folder; its URL is read from the "instance started" log
 * line. Logs are kept in memory and printed when a test fails.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { GrapevineClient } from "../../lib/client.ts";
import type { StatusReport } from "../../lib/http/status.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Options of one test instance. */
export interface InstanceOptions {
  readonly id: string;
  readonly kvPath: string;
  readonly seeds?: readonly string[];
  readonly region?: string;
  readonly port?: number;
  /** Extra `serve` flags, such as `["--fanout", "2"]`. */
  readonly flags?: readonly string[];
  /**
   * Folder of another Grapevine build to run, with its own `main.ts` and
   * `deno.json`; this repository by default.
   */
  readonly build?: string;
  /**
   * Extra environment variables, such as fleet keys. The test client sends
   * `GRAPEVINE_ADMIN_TOKEN` from here as its bearer token.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** A running `main.ts serve` child process. */
export class TestInstance {
  readonly options: InstanceOptions;
  readonly url: string;
  readonly port: number;
  readonly client: GrapevineClient;
  readonly logs: string[];
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  #status: Promise<Deno.CommandStatus>;

  private constructor(
    options: InstanceOptions,
    child: Deno.ChildProcess,
    url: string,
    logs: string[],
    drained: Promise<void>,
  ) {
    this.options = options;
    this.#child = child;
    this.url = url;
    this.port = Number(new URL(url).port);
    this.client = new GrapevineClient(url, {
      token: options.env?.GRAPEVINE_ADMIN_TOKEN,
    });
    this.logs = logs;
    this.#drained = drained;
    this.#status = child.status;
  }

  /** Process id of the child. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Starts an instance and waits until it listens. */
  static async start(options: InstanceOptions): Promise<TestInstance> {
    const build = options.build;
    const args = [
      "run",
      "--config",
      build === undefined ? CONFIG : `${build}/deno.json`,
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      build === undefined ? MAIN : `${build}/main.ts`,
      "serve",
      "--id",
      options.id,
      "--region",
      options.region ?? "local",
      "--port",
      String(options.port ?? 0),
      "--kv-path",
      options.kvPath,
      "--preset",
      "local",
      "--log-format",
      "json",
      "--log-level",
      "debug",
      ...(options.seeds?.length ? ["--seeds", options.seeds.join(",")] : []),
      ...(options.flags ?? []),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();

    const logs: string[] = [];
    const started = Promise.withResolvers<string>();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      let buffered = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          logs.push(line);
          if (line.includes('"instance started"')) {
            try {
              started.resolve(JSON.parse(line).url);
            } catch {
              // Not JSON; keep waiting.
            }
          }
        }
      }
      if (buffered) logs.push(buffered);
    };
    const drained = Promise.all([
      collect(child.stdout),
      collect(child.stderr),
    ]).then(() => {});
    child.status.then(() =>
      started.reject(
        new Error(
          `Instance ${options.id} exited before it started:\n${
            logs.join("\n")
          }`,
        ),
      )
    );

    const timer = setTimeout(
      () =>
        started.reject(
          new Error(`Instance ${options.id} did not start in 20 s`),
        ),
      20_000,
    );
    try {
      const url = await started.promise;
      return new TestInstance(options, child, url, logs, drained);
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      await drained;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident memory of the process in bytes, from /proc (Linux only). */
  async rss(): Promise<number> {
    const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    if (!match) throw new Error(`No VmRSS in /proc/${this.pid}/status`);
    return Number(match[1]) * 1024;
  }

  /** Sends a signal. */
  signal(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Kills the process with SIGKILL and waits for it. */
  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#status;
    await this.#drained;
  }

  /** Stops the process with SIGTERM (SIGKILL after 5 s) and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
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
    }, 5000);
    const status = await this.#status;
    clearTimeout(timer);
    await this.#drained;
    return status;
  }

  /** Reads the status report. */
  status(): Promise<StatusReport> {
    return this.client.status();
  }
}

/** A set of test instances sharing one temporary folder. */
export class TestFleet {
  readonly dir: string;
  readonly instances: TestInstance[] = [];
  /** Environment variables of every instance this fleet starts. */
  readonly env: Readonly<Record<string, string>>;

  private constructor(dir: string, env: Readonly<Record<string, string>>) {
    this.dir = dir;
    this.env = env;
  }

  /**
   * Starts `size` instances named `n1`…; the first is the seed of the
   * others, which start `startBatch` (default 10) at a time so that large
   * fleets do not starve each other's start-up on a small machine.
   */
  static async start(
    size: number,
    options: {
      flags?: string[];
      seeds?: number;
      env?: Record<string, string>;
      startBatch?: number;
    } = {},
  ): Promise<TestFleet> {
    const fleet = new TestFleet(
      await Deno.makeTempDir({ prefix: "grapevine-test-" }),
      options.env ?? {},
    );
    const batch = Math.max(1, options.startBatch ?? 10);
    try {
      const first = await fleet.add("n1", [], options.flags);
      for (let start = 2; start <= size; start += batch) {
        const others = [];
        for (let i = start; i <= Math.min(size, start + batch - 1); i++) {
          others.push(fleet.add(`n${i}`, [first.url], options.flags));
        }
        // Wait for the whole batch, so that a failure stops every instance.
        const results = await Promise.allSettled(others);
        const failed = results.find((result) => result.status === "rejected");
        if (failed) throw failed.reason;
      }
    } catch (error) {
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  /** Starts one more instance, with the fleet's environment unless given one. */
  async add(
    id: string,
    seeds: readonly string[],
    flags: readonly string[] = [],
    port?: number,
    env: Readonly<Record<string, string>> = this.env,
  ): Promise<TestInstance> {
    const instance = await TestInstance.start({
      id,
      kvPath: `${this.dir}/${id}.kv`,
      seeds,
      flags,
      port,
      env,
    });
    this.instances.push(instance);
    return instance;
  }

  /** Restarts a stopped or killed instance with the same id and KV file. */
  async restart(
    instance: TestInstance,
    overrides: Partial<InstanceOptions> = {},
  ): Promise<TestInstance> {
    const index = this.instances.indexOf(instance);
    const next = await TestInstance.start({
      ...instance.options,
      ...overrides,
    });
    this.instances.splice(index, 1, next);
    return next;
  }

  /** Instance by id. */
  get(id: string): TestInstance {
    const instance = this.instances.find((item) => item.options.id === id);
    if (!instance) throw new Error(`No test instance ${id}`);
    return instance;
  }

  /**
   * Polls until every listed instance reports the same digest and, when
   * given, that many live entries. Returns the reports; throws with every
   * instance's digest on timeout.
   */
  async waitConverged(
    options: {
      entries?: number;
      timeoutMs?: number;
      instances?: TestInstance[];
    } = {},
  ): Promise<StatusReport[]> {
    const instances = options.instances ?? this.instances;
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    let reports: StatusReport[] = [];
    while (true) {
      reports = await Promise.all(
        instances.map((instance) => instance.status()),
      );
      const digests = new Set(reports.map((report) => report.digest));
      const countOk = options.entries === undefined ||
        reports.every((report) => report.entries === options.entries);
      if (digests.size === 1 && countOk) return reports;
      if (Date.now() > deadline) {
        const lines = reports.map((report) =>
          `${report.id}: ${report.entries} entries, digest ${report.digest}`
        );
        throw new Error(`Instances did not converge:\n${lines.join("\n")}`);
      }
      await delay(100);
    }
  }

  /** Stops every instance and deletes the temporary folder. */
  async stop(): Promise<void> {
    await Promise.all(this.instances.map((instance) => instance.stop()));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** Prints every instance's logs; call it when a test fails. */
  dumpLogs(): void {
    for (const instance of this.instances) {
      console.error(`--- logs of ${instance.options.id} ---`);
      console.error(instance.logs.slice(-200).join("\n"));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
