/**
 * Simulated regions for `main.ts fleet`: a {@link FaultProxy} route on each
 * instance's manifest port, forwarding to the instance on an internal port
 * and delaying the traffic between instances of different regions.
 *
 * Instances advertise their manifest URLs, so every peer link and every
 * anti-entropy or probe request between two instances passes the proxy.
 * The proxy names the instance that opened a connection from `/proc`
 * (Linux only). Clients such as the CLI, curl and the dashboard are no
 * instance, so their traffic passes without delay.
 *
 * @module
 */

import { FaultProxy } from "../chaos/fault_proxy.ts";
import { ProcessSources } from "../chaos/process_sources.ts";
import {
  applyRegionLatency,
  describeRegionLatency,
  uniformLatency,
} from "../chaos/region_latency.ts";
import {
  type Manifest,
  MAX_REGION_DELAY_MS,
  type PlannedInstance,
  type RegionLatency,
} from "../manifest.ts";
import { type Args, intOption, UsageError } from "./command.ts";

/**
 * Returns the delays `fleet` should simulate, or `undefined` for none:
 * `--region-latency MS` wins, then `--regions` or the manifest's
 * `region_latency.enabled` select the manifest's `region_latency`.
 *
 * @throws {UsageError} for `--regions` with a manifest that has no
 * `region_latency`.
 */
export function simulatedLatency(
  args: Args,
  manifest: Manifest,
): RegionLatency | undefined {
  if (args.values["region-latency"] !== undefined) {
    const ms = intOption(args, "region-latency", 0, 0, MAX_REGION_DELAY_MS);
    return ms === 0 ? undefined : uniformLatency(ms);
  }
  const latency = manifest.region_latency;
  if (args.values.regions && !latency) {
    throw new UsageError(
      "--regions needs a region_latency section in the manifest; give --region-latency MS for the same delay between every two regions",
    );
  }
  return args.values.regions || latency?.enabled ? latency : undefined;
}

/** The proxy of a fleet with simulated regions. */
export class RegionNetwork {
  readonly latency: RegionLatency;
  readonly #proxy: FaultProxy;
  readonly #sources: ProcessSources;
  readonly #internalPorts: Map<string, number>;

  private constructor(
    latency: RegionLatency,
    proxy: FaultProxy,
    sources: ProcessSources,
    internalPorts: Map<string, number>,
  ) {
    this.latency = latency;
    this.#proxy = proxy;
    this.#sources = sources;
    this.#internalPorts = internalPorts;
  }

  /**
   * Picks an internal port for each instance and starts a proxy route on
   * each manifest port, with the delays between regions set.
   *
   * @throws {Error} when this system cannot name connection sources (not
   * Linux), an instance listens elsewhere than 127.0.0.1, or a manifest
   * port is taken.
   */
  static async start(
    instances: readonly PlannedInstance[],
    latency: RegionLatency,
  ): Promise<RegionNetwork> {
    if (!ProcessSources.supported()) {
      throw new Error(
        "Simulated region latency needs /proc/net/tcp (Linux) to tell which instance opened a connection; run the fleet without --regions or --region-latency",
      );
    }
    const remote = instances.find((instance) => instance.host !== "127.0.0.1");
    if (remote) {
      throw new Error(
        `Simulated region latency needs every instance on 127.0.0.1, but ${remote.id} listens on ${remote.host}`,
      );
    }
    const internalPorts = freePorts(instances.map(({ id }) => id));
    const sources = new ProcessSources();
    const proxy = new FaultProxy({ resolveSource: sources.resolve });
    try {
      for (const instance of instances) {
        proxy.route(
          instance.id,
          internalPorts.get(instance.id)!,
          instance.port,
        );
      }
    } catch (error) {
      await proxy.close();
      throw new Error(
        `Failed to listen on the manifest's ports for the latency proxy: ${
          (error as Error).message
        }`,
      );
    }
    applyRegionLatency(
      proxy,
      instances.map(({ id, region }) => ({ name: id, region })),
      latency,
    );
    return new RegionNetwork(latency, proxy, sources, internalPorts);
  }

  /** Port the instance itself listens on, behind its route. */
  internalPort(id: string): number {
    const port = this.#internalPorts.get(id);
    if (port === undefined) throw new Error(`No route for instance ${id}`);
    return port;
  }

  /** Names a child process, so that the proxy delays its connections. */
  register(pid: number, id: string): void {
    this.#sources.register(pid, id);
  }

  /** Describes the delays, one line per pair of regions. */
  describe(regions: readonly string[]): string[] {
    return describeRegionLatency(this.latency, regions);
  }

  /** Stops every route and closes every proxied connection. */
  close(): Promise<void> {
    return this.#proxy.close();
  }
}

/**
 * Returns a free port on 127.0.0.1 for each name. Another process could
 * take a port before the instance binds it, and that instance then fails to
 * start with an error in its log.
 */
function freePorts(names: readonly string[]): Map<string, number> {
  const listeners = names.map(() =>
    Deno.listen({ hostname: "127.0.0.1", port: 0 })
  );
  const ports = new Map(
    names.map((name, index) => [name, listeners[index]!.addr.port]),
  );
  for (const listener of listeners) listener.close();
  return ports;
}
