/**
 * The fleet manifest, `deploy.yml`: regions, their instances, seeds and
 * setting overrides. `main.ts fleet` starts it locally; client commands use
 * its first instance as their default URL.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type SettingName, SETTINGS, type Settings } from "./config.ts";
import { NODE_ID_PATTERN } from "./protocol/messages.ts";

const InstanceSchema = z.strictObject({
  id: z.string().regex(
    NODE_ID_PATTERN,
    "must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit",
  ),
  /** Port on 127.0.0.1 for a local fleet. */
  port: z.int().min(1).max(65535),
  /** Address to listen on; 127.0.0.1 by default. */
  host: z.string().min(1).optional(),
  /** Base URL others dial; http://HOST:PORT by default. */
  url: z.url({ protocol: /^https?$/ }).optional(),
});

const RegionSchema = z.strictObject({
  name: z.string().regex(
    /^[a-z0-9][a-z0-9-]{0,63}$/,
    "must be lowercase letters, digits and -",
  ),
  instances: z.array(InstanceSchema).min(1),
});

const settingNames = Object.keys(SETTINGS) as [SettingName, ...SettingName[]];
const fleetWide = settingNames.filter((name) =>
  !["id", "region", "host", "port", "advertiseUrl", "kvPath", "seeds"].includes(
    name,
  )
);

/** Schema of `deploy.yml`. */
export const ManifestSchema = z.strictObject({
  /** Name of the fleet, shown in logs. */
  fleet: z.string().min(1).max(64),
  /** Timing preset of every instance. */
  preset: z.enum(["local", "lan", "wan"]).default("lan"),
  /** Folder of the KV files of a local fleet, relative to the manifest. */
  data_dir: z.string().min(1).default(".grapevine"),
  /** Ids of the instances others join through; every instance by default. */
  seeds: z.array(z.string()).optional(),
  /** Setting overrides for every instance, by setting name. */
  settings: z.partialRecord(
    z.enum(fleetWide as [string, ...string[]]),
    z.union([z.string(), z.number(), z.array(z.string())]),
  ).default({}),
  regions: z.array(RegionSchema).min(1),
}).superRefine((manifest, context) => {
  const ids = new Set<string>();
  const ports = new Set<string>();
  manifest.regions.forEach((region, r) => {
    region.instances.forEach((instance, i) => {
      if (ids.has(instance.id)) {
        context.addIssue({
          code: "custom",
          path: ["regions", r, "instances", i, "id"],
          message: `duplicate instance id ${instance.id}`,
        });
      }
      ids.add(instance.id);
      const address = `${instance.host ?? "127.0.0.1"}:${instance.port}`;
      if (ports.has(address)) {
        context.addIssue({
          code: "custom",
          path: ["regions", r, "instances", i, "port"],
          message: `${address} is used by two instances`,
        });
      }
      ports.add(address);
    });
  });
  manifest.seeds?.forEach((seed, index) => {
    if (!ids.has(seed)) {
      context.addIssue({
        code: "custom",
        path: ["seeds", index],
        message: `seed ${seed} is not an instance of this manifest`,
      });
    }
  });
});

/** A parsed manifest. */
export type Manifest = z.infer<typeof ManifestSchema>;

/** One instance of a manifest with everything needed to start it. */
export interface PlannedInstance {
  readonly id: string;
  readonly region: string;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly kvPath: string;
}

/** Raised for a manifest that cannot be read or is invalid. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/** The manifest used when none is given: 5 instances in 3 regions. */
export const DEFAULT_MANIFEST_PATH = new URL("../deploy.yml", import.meta.url);

/**
 * Reads and validates a manifest file.
 *
 * @throws {ManifestError} naming the file, the path of each wrong field and
 * what was expected.
 */
export async function loadManifest(path: string | URL): Promise<Manifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ManifestError(
      `Cannot read manifest ${path}: ${(error as Error).message}`,
    );
  }
  return parseManifest(text, String(path));
}

/** Parses manifest text; `source` names it in error messages. */
export function parseManifest(text: string, source: string): Manifest {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new ManifestError(
      `Manifest ${source} is not valid YAML: ${(error as Error).message}`,
    );
  }
  const parsed = ManifestSchema.safeParse(data);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) =>
      `${issue.path.join(".") || "(top level)"}: ${issue.message}`
    );
    throw new ManifestError(
      `Manifest ${source} is invalid:\n  ${lines.join("\n  ")}`,
    );
  }
  return parsed.data;
}

/**
 * Lists the instances of a manifest. With `size`, the fleet is resized to
 * that many instances: extra ones are spread over the regions in turn, on
 * the ports after the highest one.
 */
export function planInstances(
  manifest: Manifest,
  baseDir: string,
  size?: number,
): PlannedInstance[] {
  const planned: PlannedInstance[] = [];
  for (const region of manifest.regions) {
    for (const instance of region.instances) {
      planned.push(plan(instance.id, region.name, instance, manifest, baseDir));
    }
  }
  if (size === undefined) return planned;
  if (size < planned.length) return planned.slice(0, size);
  let port = Math.max(...planned.map((instance) => instance.port));
  const counts = new Map<string, number>();
  for (const instance of planned) {
    counts.set(instance.region, (counts.get(instance.region) ?? 0) + 1);
  }
  for (let i = planned.length; i < size; i++) {
    const region = manifest.regions[i % manifest.regions.length]!.name;
    const count = (counts.get(region) ?? 0) + 1;
    counts.set(region, count);
    port++;
    planned.push(
      plan(`${region}-${count}`, region, { port }, manifest, baseDir),
    );
  }
  return planned;
}

function plan(
  id: string,
  region: string,
  instance: { port: number; host?: string; url?: string },
  manifest: Manifest,
  baseDir: string,
): PlannedInstance {
  const host = instance.host ?? "127.0.0.1";
  return {
    id,
    region,
    host,
    port: instance.port,
    url: instance.url ?? `http://${host}:${instance.port}`,
    kvPath: `${baseDir}/${manifest.data_dir}/${id}.kv`,
  };
}

/** Returns the seed URLs of a manifest's planned instances. */
export function seedUrls(
  manifest: Manifest,
  instances: readonly PlannedInstance[],
): string[] {
  const seeds = manifest.seeds ?? instances.map((instance) => instance.id);
  return instances
    .filter((instance) => seeds.includes(instance.id))
    .map((instance) => instance.url);
}

/** Returns the manifest's fleet-wide setting overrides. */
export function manifestSettings(manifest: Manifest): Partial<Settings> {
  return { preset: manifest.preset, ...manifest.settings } as Partial<Settings>;
}
