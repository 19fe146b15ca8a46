/**
 * A fleet of real `main.ts serve` processes on 127.0.0.1 whose peer traffic
 * passes a {@link FaultProxy}, for the chaos harness and its tests.
 *
 * Each instance listens on a port of its own and advertises the URL of its
 * proxy route, and its seeds are routes too, so every peer link and every
 * `/v1/sync` call crosses the proxy. Clients of the harness talk to each
 * instance's own port directly, past the proxy. A killed instance restarts
 * with the same id and KV file on a new port, and its route follows it.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { GrapevineClient } from "../client.ts";
import type { StatusReport } from "../http/status.ts";
import { FaultProxy, type Route } from "./fault_proxy.ts";
import { ProcessSources } from "./process_sources.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Log lines kept per instance, across its restarts. */
const LOG_LINES = 3000;
/** Time an instance has to print its "instance started" line. */
const START_TIMEOUT_MS = 30_000;

/** Options of a {@link ChaosFleet}. */
export interface ChaosFleetOptions {
  /** Number of instances, named `n1`, `n2`, …. */
  readonly size: number;
  /** Extra `serve` flags for every instance, such as `["--fanout", "2"]`. */
  readonly flags?: readonly string[];
  /** Region of one instance, by name; `local` by default. */
  readonly region?: (name: string) => string;
  /** Extra environment variables for one instance, by name. */
  readonly env?: (name: string) => Record<string, string>;
  /** Folder for the KV files; a new temporary folder by default. */
  readonly dir?: string;
  /** Log level of the instances; `info` by default. */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
}

/** One instance of a {@link ChaosFleet}. */
export class ChaosInstance {
  readonly name: string;
  readonly route: Route;
  readonly kvPath: string;
  /** Recent log lines of every run of this instance. */
  readonly logs: string[] = [];
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #port = 0;
  #client: GrapevineClient | undefined;

  constructor(name: string, route: Route, kvPath: string) {
    this.name = name;
    this.route = route;
    this.kvPath = kvPath;
  }

  /** Whether the process runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Process id of the current run. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The instance's own port, past the proxy. */
  get port(): number {
    return this.#port;
  }

  /** Base URL of the instance's own port, for clients. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /**
   * A client of the current run.
   *
   * @throws {Error} when the instance is not running.
   */
  get client(): GrapevineClient {
    if (!this.#client) throw new Error(`Instance ${this.name} is not running`);
    return this.#client;
  }

  /** Reads the status report. */
  status(): Promise<StatusReport> {
    return this.client.status();
  }

  /**
   * @internal Starts the process; resolves once it listens. `onPid` runs
   * before the process can open any connection.
   */
  async spawn(
    args: string[],
    env: Record<string, string>,
    onPid: (pid: number) => void,
  ): Promise<void> {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    onPid(child.pid);
    const started = Promise.withResolvers<number>();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      let buffered = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          this.#log(line);
          if (line.includes('"instance started"')) {
            try {
              started.resolve(JSON.parse(line).port);
            } catch {
              // Not JSON; keep waiting.
            }
          }
        }
      }
      if (buffered) this.#log(buffered);
    };
    const drained = Promise.all([
      collect(child.stdout),
      collect(child.stderr),
    ]);
    const exited = child.status.then(async () => {
      await drained;
      started.reject(
        new Error(`Instance ${this.name} exited before it started`),
      );
    });
    this.#exited = exited;
    const timer = setTimeout(
      () =>
        started.reject(
          new Error(
            `Instance ${this.name} did not start in ${START_TIMEOUT_MS} ms`,
          ),
        ),
      START_TIMEOUT_MS,
    );
    try {
      this.#port = await started.promise;
      this.#child = child;
      this.#client = new GrapevineClient(this.url, { timeoutMs: 5000 });
    } catch (error) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await exited;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** @internal Sends a signal and waits for the process to exit. */
  async terminate(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    this.#client = undefined;
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (signal === "SIGTERM") {
      timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5000);
    }
    await this.#exited;
    clearTimeout(timer);
  }

  #log(line: string): void {
    this.logs.push(line);
    if (this.logs.length > LOG_LINES) {
      this.logs.splice(0, this.logs.length - LOG_LINES);
    }
  }
}

/** Instances, their proxy and the lookup of connection sources. */
export class ChaosFleet {
  readonly proxy: FaultProxy;
  readonly sources = new ProcessSources();
  readonly instances: ChaosInstance[] = [];
  readonly dir: string;
  readonly #options: ChaosFleetOptions;
  readonly #ownsDir: boolean;
  readonly #envOverrides = new Map<string, Record<string, string>>();

  private constructor(options: ChaosFleetOptions, dir: string, owns: boolean) {
    this.#options = options;
    this.dir = dir;
    this.#ownsDir = owns;
    this.proxy = new FaultProxy({ resolveSource: this.sources.resolve });
  }

  /**
   * Starts every instance and their proxy routes.
   *
   * @throws {Error} when this system cannot name connection sources (not
   * Linux), or an instance does not start; everything started is stopped.
   */
  static async start(options: ChaosFleetOptions): Promise<ChaosFleet> {
    if (!ProcessSources.supported()) {
      throw new Error(
        "The chaos fleet needs /proc/net/tcp (Linux) to tell which instance opened a connection",
      );
    }
    const owns = options.dir === undefined;
    const dir = options.dir ??
      await Deno.makeTempDir({ prefix: "grapevine-chaos-" });
    const fleet = new ChaosFleet(options, dir, owns);
    try {
      for (let i = 1; i <= options.size; i++) {
        const name = `n${i}`;
        const route = fleet.proxy.route(name, 0);
        fleet.instances.push(
          new ChaosInstance(name, route, `${dir}/${name}.kv`),
        );
      }
      await Promise.all(fleet.instances.map((item) => fleet.#spawn(item)));
    } catch (error) {
      await fleet.close();
      throw error;
    }
    return fleet;
  }

  /** Names of the instances. */
  get names(): string[] {
    return this.instances.map((item) => item.name);
  }

  /** Instance by name. */
  get(name: string): ChaosInstance {
    const found = this.instances.find((item) => item.name === name);
    if (!found) throw new Error(`No chaos instance ${name}`);
    return found;
  }

  /** Instances whose process runs. */
  running(): ChaosInstance[] {
    return this.instances.filter((item) => item.running);
  }

  /** Kills an instance with SIGKILL and waits for it to exit. */
  async kill(name: string): Promise<void> {
    const instance = this.get(name);
    const pid = instance.pid;
    await instance.terminate("SIGKILL");
    if (pid !== undefined) this.sources.unregister(pid);
  }

  /** Stops an instance with SIGTERM and waits for it to exit. */
  async stop(name: string): Promise<void> {
    const instance = this.get(name);
    const pid = instance.pid;
    await instance.terminate("SIGTERM");
    if (pid !== undefined) this.sources.unregister(pid);
  }

  /**
   * Starts a stopped instance again with its id and KV file. `env` replaces
   * its extra environment from now on, for example to move its clock.
   */
  async restart(
    name: string,
    options: { env?: Record<string, string> } = {},
  ): Promise<ChaosInstance> {
    const instance = this.get(name);
    if (instance.running) await this.kill(name);
    if (options.env) this.#envOverrides.set(name, options.env);
    await this.#spawn(instance);
    return instance;
  }

  /** Status reports of the running instances. */
  statuses(): Promise<StatusReport[]> {
    return Promise.all(this.running().map((item) => item.status()));
  }

  /**
   * Polls every 50 ms until every running instance (or those given)
   * reports the same digest. Returns the time it took.
   *
   * @throws {Error} listing each instance's digest after `timeoutMs`.
   */
  async waitConverged(
    options: { timeoutMs?: number; instances?: ChaosInstance[] } = {},
  ): Promise<{ ms: number; reports: StatusReport[] }> {
    const started = performance.now();
    const deadline = started + (options.timeoutMs ?? 30_000);
    let lines: string[] = [];
    while (performance.now() < deadline) {
      const instances = options.instances ?? this.running();
      try {
        const reports = await Promise.all(
          instances.map((item) => item.status()),
        );
        if (new Set(reports.map((report) => report.digest)).size === 1) {
          return { ms: performance.now() - started, reports };
        }
        lines = reports.map((report) =>
          `${report.id}: ${report.entries} entries, ${report.tombstones} tombstones, ${report.quarantined} quarantined, digest ${report.digest}`
        );
      } catch (error) {
        lines = [`status failed: ${(error as Error).message}`];
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(
      `Instances did not converge in ${options.timeoutMs ?? 30_000} ms:\n${
        lines.join("\n")
      }`,
    );
  }

  /** Returns the last `lines` log lines of every instance. */
  logs(lines = 200): string {
    return this.instances.map((item) =>
      `--- logs of ${item.name} ---\n${item.logs.slice(-lines).join("\n")}`
    ).join("\n");
  }

  /** Stops every instance and the proxy, and deletes a temporary folder. */
  async close(): Promise<void> {
    await Promise.all(this.instances.map((item) => this.stop(item.name)));
    await this.proxy.close();
    if (this.#ownsDir) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #spawn(instance: ChaosInstance): Promise<void> {
    const seeds = this.instances
      .slice(0, 2)
      .filter((item) => item !== instance)
      .map((item) => item.route.url);
    const args = [
      "run",
      "--config",
      CONFIG,
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      MAIN,
      "serve",
      "--id",
      instance.name,
      "--port",
      "0",
      "--kv-path",
      instance.kvPath,
      "--region",
      this.#options.region?.(instance.name) ?? "local",
      "--preset",
      "local",
      "--advertise-url",
      instance.route.url,
      "--log-format",
      "json",
      "--log-level",
      this.#options.logLevel ?? "info",
      ...(seeds.length > 0 ? ["--seeds", seeds.join(",")] : []),
      ...(this.#options.flags ?? []),
    ];
    const env = this.#envOverrides.get(instance.name) ??
      this.#options.env?.(instance.name) ?? {};
    let pid: number | undefined;
    try {
      await instance.spawn(args, env, (started) => {
        pid = started;
        this.sources.register(started, instance.name);
      });
    } catch (error) {
      if (pid !== undefined) this.sources.unregister(pid);
      throw error;
    }
    this.proxy.retarget(instance.name, instance.port);
  }
}
