/**
 * `main.ts fleet`: starts every instance of a manifest as a child process
 * on this machine, prefixes their log lines with the instance id, and stops
 * them all on SIGINT or SIGTERM. With `--regions` or `--region-latency` the
 * traffic between regions passes a delaying proxy (see fleet_regions.ts).
 *
 * @module
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { flagName, resolveSettings, type SettingName } from "../config.ts";
import {
  DEFAULT_MANIFEST_PATH,
  loadManifest,
  type Manifest,
  manifestSettings,
  planInstances,
  type PlannedInstance,
  seedUrls,
} from "../manifest.ts";
import { type Args, type Command, intOption } from "./command.ts";
import { RegionNetwork, simulatedLatency } from "./fleet_regions.ts";

const MAIN_PATH = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CONFIG_PATH = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** Permissions of an instance process: sockets, its KV file, settings from the environment. */
export const SERVE_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];

/** Resolves `--manifest`, or the repository's deploy.yml. */
export function manifestPath(args: Args): string {
  const given = args.values.manifest;
  return typeof given === "string"
    ? given
    : fileURLToPath(DEFAULT_MANIFEST_PATH);
}

/** Returns the `serve` arguments of one planned instance. */
export function serveArgs(
  instance: PlannedInstance,
  manifest: Manifest,
  seeds: string[],
  logFormat: string,
): string[] {
  const args = [
    "run",
    "--config",
    CONFIG_PATH,
    ...SERVE_PERMISSIONS,
    MAIN_PATH,
    "serve",
    "--id",
    instance.id,
    "--region",
    instance.region,
    "--host",
    instance.host,
    "--port",
    String(instance.port),
    "--advertise-url",
    instance.url,
    "--kv-path",
    instance.kvPath,
    "--seeds",
    seeds.filter((url) => url !== instance.url).join(","),
    "--log-format",
    logFormat,
  ];
  for (const [name, value] of Object.entries(manifestSettings(manifest))) {
    args.push(`--${flagName(name as SettingName)}`, String(value));
  }
  return args;
}

/**
 * Waits until the instance with id `id` answers `/healthz` at `url`. Returns
 * false when the deadline passes or `gone()` says the process exited; an
 * answer from another instance on that port does not count.
 */
export async function waitHealthy(
  url: string,
  id: string,
  deadlineMs: number,
  gone: () => boolean = () => false,
): Promise<boolean> {
  while (Date.now() < deadlineMs && !gone()) {
    try {
      const response = await fetch(`${url}/healthz`);
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.id === id) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/**
 * Returns the planned instances whose port is already taken, so the fleet
 * can refuse to start before any child fails.
 */
export function busyPorts(
  instances: readonly PlannedInstance[],
): PlannedInstance[] {
  const busy: PlannedInstance[] = [];
  for (const instance of instances) {
    try {
      const listener = Deno.listen({
        hostname: instance.host,
        port: instance.port,
      });
      listener.close();
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) busy.push(instance);
      else throw error;
    }
  }
  return busy;
}

async function pipeLines(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  write: (line: string) => void,
): Promise<void> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) write(`${prefix} ${line}`);
  }
  if (buffered) write(`${prefix} ${buffered}`);
}

const COLORS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** Raised when a fleet cannot start; the message says why and what to do. */
export class FleetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FleetError";
  }
}

/** The `fleet` command. */
export const fleetCommand: Command = {
  name: "fleet",
  usage: "[options]",
  summary:
    "Start the fleet of a manifest (deploy.yml) on this machine: one child process per instance, " +
    "each with its own KV file. Ctrl-C or SIGTERM stops them all.",
  options: {
    manifest: {
      type: "string",
      value: "PATH",
      help: "Fleet manifest (default: deploy.yml of this repository)",
    },
    size: {
      type: "string",
      value: "N",
      help:
        "Run N instances instead of the manifest's list; extra ones are spread over its regions",
    },
    clean: {
      type: "boolean",
      help: "Delete the fleet's KV files before starting",
    },
    "log-format": {
      type: "string",
      value: "text|json",
      help: "Log format of the instances (default text)",
    },
    regions: {
      type: "boolean",
      help:
        "Delay the traffic between regions as the manifest's region_latency sets (Linux only)",
    },
    "region-latency": {
      type: "string",
      value: "MS",
      help:
        "One-way delay in milliseconds between every two regions, in place of the manifest's region_latency; 0 turns the delays off (Linux only)",
    },
  },
  async run(args) {
    const path = manifestPath(args);
    const manifest = await loadManifest(path);
    const size = args.values.size === undefined
      ? undefined
      : intOption(args, "size", 5, 1, 500);
    const instances = planInstances(manifest, dirname(path), size);
    // Fail here, once, rather than in every child process.
    resolveSettings(manifestSettings(manifest));
    const seeds = seedUrls(manifest, instances);
    const latency = simulatedLatency(args, manifest);
    const logFormat = String(args.values["log-format"] ?? "text");
    if (logFormat !== "text" && logFormat !== "json") {
      throw new Error(
        `Invalid --log-format ${logFormat}: expected text or json`,
      );
    }

    if (args.values.clean) {
      for (const instance of instances) {
        for (const suffix of ["", "-shm", "-wal"]) {
          await Deno.remove(instance.kvPath + suffix).catch(() => {});
        }
      }
    }
    for (const instance of instances) {
      await Deno.mkdir(dirname(instance.kvPath), { recursive: true });
    }

    const busy = busyPorts(instances);
    if (busy.length > 0) {
      throw new FleetError(
        `Ports already in use: ${
          busy.map((instance) => `${instance.port} (${instance.id})`).join(", ")
        }. Is another fleet running? Stop it, or give the instances other ports in a manifest of your own (--manifest)`,
      );
    }

    const color = Deno.stdout.isTerminal();
    const width = Math.max(...instances.map((instance) => instance.id.length));
    const encoder = new TextEncoder();
    const write = (line: string) =>
      Deno.stdout.writeSync(encoder.encode(line + "\n"));

    const network = latency
      ? await RegionNetwork.start(instances, latency)
      : undefined;
    if (network) {
      write(
        "simulated region latency, between instances only (clients are not delayed):",
      );
      const regions = [...new Set(instances.map(({ region }) => region))];
      for (const line of network.describe(regions)) write(`  ${line}`);
    }

    let running = instances.length;
    let failed = false;
    let stopping = false;
    const stopped = Promise.withResolvers<void>();
    const children = instances.map((instance, index) => {
      // Behind the proxy the instance listens on an internal port and
      // advertises its manifest URL, which is the proxy's route.
      const listen = network
        ? { ...instance, port: network.internalPort(instance.id) }
        : instance;
      const child = new Deno.Command(Deno.execPath(), {
        args: serveArgs(listen, manifest, seeds, logFormat),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      network?.register(child.pid, instance.id);
      const label = `[${instance.id.padEnd(width)}]`;
      const prefix = color
        ? `\x1b[${COLORS[index % COLORS.length]}m${label}\x1b[0m`
        : label;
      const pipes = Promise.all([
        pipeLines(child.stdout, prefix, write),
        pipeLines(child.stderr, prefix, write),
      ]);
      const exited = child.status.then(async (status) => {
        // Print the child's last lines (its error) before its exit.
        await pipes;
        if (!stopping) {
          write(
            `${prefix} exited with code ${status.code}${
              status.signal ? ` (${status.signal})` : ""
            }`,
          );
        }
        running--;
        if (running === 0 && !stopping) {
          write("every instance has exited; stopping the fleet");
          stopping = true;
          failed = true;
          stopped.resolve();
        }
        return status;
      });
      return { instance, child, pipes, exited };
    });

    const stop = () => {
      if (stopping) return;
      stopping = true;
      write(`stopping ${children.length} instances`);
      for (const { child } of children) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already exited.
        }
      }
      const killTimer = setTimeout(() => {
        for (const { child } of children) {
          try {
            child.kill("SIGKILL");
          } catch {
            // Already exited.
          }
        }
      }, 5000);
      Promise.all(children.map(({ exited }) => exited)).then(() => {
        clearTimeout(killTimer);
        stopped.resolve();
      });
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);

    const deadline = Date.now() + 30_000;
    const exitedIds = new Set<string>();
    for (const { instance, exited } of children) {
      exited.then(() => exitedIds.add(instance.id));
    }
    const healthy = await Promise.all(
      instances.map((instance) =>
        waitHealthy(
          instance.url,
          instance.id,
          deadline,
          () => exitedIds.has(instance.id),
        )
      ),
    );
    if (!stopping) {
      const down = instances.filter((_, index) => !healthy[index]);
      if (down.length > 0) {
        write(
          `not running or not answering: ${
            down.map((instance) => instance.id).join(", ")
          }; see their lines above`,
        );
      }
      const up = instances.length - down.length;
      write(
        `fleet ${manifest.fleet} ${
          down.length === 0 ? "ready" : "started with errors"
        }: ${up} of ${instances.length} instances, first at ${
          instances[0]!.url
        }; Ctrl-C stops it`,
      );
      write(
        "try, in another terminal: npx -y deno@2 run -A main.ts push --file tests/fixtures/edge-config.yaml, then npx -y deno@2 run -A main.ts status",
      );
    }

    await stopped.promise;
    await Promise.all(children.map(({ pipes }) => pipes));
    await network?.close();
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    return failed ? 1 : 0;
  },
};
