/**
 * Values that every deploy target takes from a manifest: each instance with
 * its KV path and seeds, and the `GRAPEVINE_*` environment that configures
 * `main.ts serve`.
 *
 * @module
 */

import {
  envName,
  type SettingName,
  SETTINGS,
  type Settings,
} from "../config.ts";
import { type Manifest, manifestSettings } from "../manifest.ts";

/** One file written by a target, relative to the output folder. */
export interface RenderedFile {
  readonly path: string;
  readonly content: string;
  /** File mode, such as 0o755 for scripts; 0o644 when absent. */
  readonly mode?: number;
}

/** Files of one target, and warnings about manifest values that will not work there. */
export interface RenderResult {
  readonly files: RenderedFile[];
  readonly warnings: string[];
}

/** Paths a target needs to point from the output folder back to the project. */
export interface RenderContext {
  /** Folder of the manifest, which is the project root. */
  readonly projectDir: string;
  /** Folder the files are written to. */
  readonly outDir: string;
}

/** Raised when a manifest lacks a value that a target needs. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RenderError";
  }
}

/** One instance of a manifest as the deploy targets see it. */
export interface DeployedInstance {
  readonly id: string;
  readonly region: string;
  /** Hosting platform's region code, such as `fra`. */
  readonly platformRegion: string | undefined;
  readonly port: number;
  /** Address from the manifest; 127.0.0.1 when it gives none. */
  readonly host: string;
  /** Base URL from the manifest; http://HOST:PORT when it gives none. */
  readonly url: string;
  /** The manifest's `kv_path` with this instance's values filled in. */
  readonly kvPath: string;
  /** Whether the manifest lists this instance as a seed. */
  readonly seed: boolean;
}

/** Lists the manifest's instances in manifest order. */
export function deployedInstances(manifest: Manifest): DeployedInstance[] {
  const seeds = manifest.seeds;
  return manifest.regions.flatMap((region) =>
    region.instances.map((instance) => {
      const host = instance.host ?? "127.0.0.1";
      return {
        id: instance.id,
        region: region.name,
        platformRegion: region.platform_region,
        port: instance.port,
        host,
        url: instance.url ?? `http://${urlHost(host)}:${instance.port}`,
        kvPath: kvPathFor(manifest, instance.id, region.name),
        seed: seeds === undefined || seeds.includes(instance.id),
      };
    })
  );
}

/** Fills `{id}`, `{region}` and `{fleet}` in the manifest's `kv_path`. */
export function kvPathFor(
  manifest: Manifest,
  id: string,
  region: string,
): string {
  return manifest.kv_path
    .replaceAll("{id}", id)
    .replaceAll("{region}", region)
    .replaceAll("{fleet}", manifest.fleet);
}

/** Values that differ from one instance to the next. */
export interface InstanceValues {
  readonly id?: string;
  readonly region: string;
  readonly host: string;
  readonly port: number;
  /** Base URL peers dial, or `none` for an instance that cannot be dialled. */
  readonly advertiseUrl?: string;
  readonly kvPath?: string;
  readonly seeds: readonly string[];
}

/**
 * Returns the `GRAPEVINE_*` variables that configure `main.ts serve` for one
 * instance: its own values, then the manifest's fleet-wide settings. Secrets
 * are not included; see {@link secretEnvNames}.
 */
export function instanceEnv(
  manifest: Manifest,
  values: InstanceValues,
): Record<string, string> {
  const env: Record<string, string> = {};
  const set = (name: SettingName, value: unknown) => {
    if (value === undefined) return;
    env[envName(name)] = Array.isArray(value) ? value.join(",") : String(value);
  };
  set("id", values.id);
  set("region", values.region);
  set("host", values.host);
  set("port", values.port);
  set("advertiseUrl", values.advertiseUrl);
  set("kvPath", values.kvPath);
  set("seeds", values.seeds);
  // The instance reads its secrets from the variables the manifest names.
  const { fleet_keys_env, admin_token_env } = manifest.security;
  if (fleet_keys_env !== SETTINGS.fleetKeysEnv.default) {
    set("fleetKeysEnv", fleet_keys_env);
  }
  if (admin_token_env !== SETTINGS.adminTokenEnv.default) {
    set("adminTokenEnv", admin_token_env);
  }
  const settings: Partial<Settings> = manifestSettings(manifest);
  for (const [name, value] of Object.entries(settings)) {
    set(name as SettingName, value);
  }
  if (!("logFormat" in settings)) set("logFormat", "json");
  return env;
}

/** Names of the environment variables that hold the fleet's secrets. */
export function secretEnvNames(manifest: Manifest): string[] {
  return [
    manifest.security.fleet_keys_env,
    manifest.security.admin_token_env,
  ];
}

/** Returns the seed URLs of an instance: every seed but itself. */
export function seedsFor(
  instance: { id?: string },
  seeds: readonly { id: string; url: string }[],
): string[] {
  return seeds.filter((seed) => seed.id !== instance.id).map((seed) =>
    seed.url
  );
}

/** Brackets an IPv6 address for use in a URL. */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** First line of every rendered file that takes `#` comments. */
export function generatedHeader(manifest: Manifest, target: string): string {
  return `Generated by \`main.ts deploy render --target ${target}\` from the manifest of fleet ${manifest.fleet}; edit deploy.yml and render again instead of editing this file.`;
}
