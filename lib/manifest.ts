/**
 * The fleet manifest, `deploy.yml`: regions, their instances, seeds,
 * setting overrides, the names of the environment variables that hold
 * secrets, and options of the deploy targets. `main.ts fleet` starts it
 * locally, client commands use its first instance as their default URL, and
 * `main.ts deploy render` writes deployment files from it.
 *
 * `deploy.schema.json` is generated from {@link ManifestSchema} by
 * `main.ts deploy schema`, so editors can complete and check the manifest.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type SettingName, SETTINGS, type Settings } from "./config.ts";
import { NODE_ID_PATTERN } from "./protocol/messages.ts";

const InstanceSchema = z.strictObject({
  id: z.string().regex(
    NODE_ID_PATTERN,
    "must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit",
  ).describe("Instance id, unique in the fleet"),
  port: z.int().min(1).max(65535).describe(
    "TCP port the instance listens on",
  ),
  host: z.string().min(1).optional().describe(
    "Address to listen on; 127.0.0.1 by default",
  ),
  url: z.url({ protocol: /^https?$/ }).optional().describe(
    "Base URL other instances dial; http://HOST:PORT by default",
  ),
});

const REGION_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

const RegionSchema = z.strictObject({
  name: z.string().regex(
    REGION_NAME_PATTERN,
    "must be lowercase letters, digits and -",
  ).describe("Region name, used to group instances"),
  platform_region: z.string().regex(
    /^[a-z0-9][a-z0-9-]{1,31}$/,
    "must be a platform region code of lowercase letters, digits and -, such as fra",
  ).optional().describe(
    "Region code of the hosting platform, such as Fly.io's fra; the fly target requires it",
  ),
  instances: z.array(InstanceSchema).min(1),
});

const settingNames = Object.keys(SETTINGS) as [SettingName, ...SettingName[]];
const fleetWide = settingNames.filter((name) =>
  !["id", "region", "host", "port", "advertiseUrl", "kvPath", "seeds"].includes(
    name,
  )
);

/**
 * Returns the schema of one setting override. It checks the type and range
 * that editors can show; `resolveSettings` checks the rest at start.
 */
function overrideSchema(name: SettingName): z.ZodType {
  const spec = SETTINGS[name] as {
    kind: string;
    help: string;
    min?: number;
    max?: number;
    choices?: readonly string[];
  };
  let schema: z.ZodType;
  switch (spec.kind) {
    case "int":
      schema = z.int().min(spec.min ?? 0).max(
        spec.max ?? Number.MAX_SAFE_INTEGER,
      );
      break;
    case "number":
      schema = z.number().min(spec.min ?? 0).max(
        spec.max ?? Number.MAX_SAFE_INTEGER,
      );
      break;
    case "enum":
      schema = z.enum(spec.choices as [string, ...string[]]);
      break;
    case "list":
      schema = z.array(z.string());
      break;
    default:
      schema = z.string();
  }
  return schema.optional().describe(spec.help);
}

const SettingsOverridesSchema = z.strictObject(
  Object.fromEntries(fleetWide.map((name) => [name, overrideSchema(name)])),
);

const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;

function envVariableName(fallback: string, meaning: string) {
  return z.string().regex(
    ENV_NAME_PATTERN,
    "must be the name of an environment variable (capital letters, digits and _), never the secret itself",
  ).default(fallback).describe(
    `Name of the environment variable that holds ${meaning}; the value itself never goes in this file`,
  );
}

const SecuritySchema = z.strictObject({
  fleet_keys_env: envVariableName(
    "GRAPEVINE_FLEET_KEYS",
    "the keys that sign gossip between instances",
  ),
  admin_token_env: envVariableName(
    "GRAPEVINE_ADMIN_TOKEN",
    "the token that write requests to the HTTP API must carry",
  ),
});

/** Placeholders a `kv_path` pattern may contain. */
export const KV_PATH_PLACEHOLDERS = ["{id}", "{region}", "{fleet}"] as const;

/** KV path pattern of deployed instances when the manifest sets none. */
export const DEFAULT_KV_PATH = "/var/lib/grapevine/{id}.kv";

const KvPathSchema = z.string().regex(
  /^\/[A-Za-z0-9_.\/{}-]+$/,
  "must be an absolute path of letters, digits, _ . - / and the placeholders {id}, {region}, {fleet}",
).superRefine((pattern, context) => {
  for (const placeholder of pattern.match(/\{[^}]*\}/g) ?? []) {
    if (!(KV_PATH_PLACEHOLDERS as readonly string[]).includes(placeholder)) {
      context.addIssue({
        code: "custom",
        message:
          `unknown placeholder ${placeholder}; expected {id}, {region} or {fleet}`,
      });
    }
  }
  if (!pattern.includes("{id}")) {
    context.addIssue({
      code: "custom",
      message: "must contain {id}, so that every instance has its own KV file",
    });
  }
});

const absolutePath = z.string().regex(
  /^\/[A-Za-z0-9_.\/-]*$/,
  "must be an absolute path of letters, digits, _ . - and /",
);

const DockerTargetSchema = z.strictObject({
  base_image: z.string().regex(
    /^[a-z0-9][a-z0-9._\/-]*:[A-Za-z0-9._-]+$/,
    "must be an image name with a tag, such as denoland/deno:2.9.6",
  ).default("denoland/deno:2.9.6").describe(
    "Base image of the Dockerfile: the official Deno image with a fixed tag",
  ),
});

const SystemdTargetSchema = z.strictObject({
  user: z.string().regex(
    /^[a-z_][a-z0-9_-]{0,31}$/,
    "must be a system user name: lowercase letters, digits, _ and -",
  ).default("grapevine").describe("System user the instances run as"),
  install_dir: absolutePath.default("/opt/grapevine").describe(
    "Folder on the VM that holds a copy of this repository",
  ),
  deno_path: absolutePath.default("/usr/local/bin/deno").describe(
    "Path of the deno executable on the VM",
  ),
  env_file: absolutePath.default("/etc/grapevine/grapevine.env").describe(
    "File of KEY=VALUE lines with the secrets named under security; readable only by root",
  ),
});

const FLY_APP_PATTERN = /^[a-z0-9][a-z0-9-]{0,40}$/;

const FlyTargetSchema = z.strictObject({
  app_prefix: z.string().regex(
    FLY_APP_PATTERN,
    "must be 1 to 41 lowercase letters, digits and -",
  ).optional().describe(
    "Fly.io app names are PREFIX-REGION; the fleet name by default",
  ),
  port: z.int().min(1).max(65535).default(8080).describe(
    "Port every Fly Machine listens on inside its VM",
  ),
  memory_mb: z.int().min(256).max(65536).default(256).describe(
    "Memory of each Fly Machine, in MiB",
  ),
});

const DenoDeployTargetSchema = z.strictObject({
  app: z.string().regex(
    FLY_APP_PATTERN,
    "must be 1 to 41 lowercase letters, digits and -",
  ).optional().describe("Deno Deploy app name; the fleet name by default"),
  region: z.string().regex(
    /^[a-z0-9][a-z0-9-]{0,63}$/,
    "must be lowercase letters, digits and -",
  ).default("deno-deploy").describe(
    "Grapevine region name of the Deno Deploy instance",
  ),
});

const GithubTargetSchema = z.strictObject({
  branch: z.string().min(1).default("main").describe(
    "Branch whose pushes run the deploy job",
  ),
  deploy: z.enum(["fly", "none"]).default("fly").describe(
    "What the deploy job does: fly deploys every region's Fly.io app, none only renders the files",
  ),
});

const TargetsSchema = z.strictObject({
  docker: DockerTargetSchema.prefault({}),
  systemd: SystemdTargetSchema.prefault({}),
  fly: FlyTargetSchema.prefault({}),
  deno_deploy: DenoDeployTargetSchema.prefault({}),
  github: GithubTargetSchema.prefault({}),
});

/** Largest simulated one-way delay, in milliseconds. */
export const MAX_REGION_DELAY_MS = 10_000;

const delayMs = z.int().min(0).max(MAX_REGION_DELAY_MS);

const RegionLatencySchema = z.strictObject({
  enabled: z.boolean().default(false).describe(
    "Whether main.ts fleet applies these delays without being given --regions",
  ),
  default_ms: delayMs.default(0).describe(
    "One-way delay in milliseconds between two regions that no pair lists",
  ),
  jitter_ms: delayMs.default(0).describe(
    "Up to this many milliseconds more per chunk of data, uniform at random",
  ),
  pairs: z.array(z.strictObject({
    regions: z.tuple([
      z.string().regex(REGION_NAME_PATTERN, "must be a region name"),
      z.string().regex(REGION_NAME_PATTERN, "must be a region name"),
    ]).describe("The two regions, in either order"),
    ms: delayMs.describe(
      "One-way delay in milliseconds, added in each direction, so a round trip takes twice as long",
    ),
  })).default([]).describe("Delays between two named regions"),
});

/** Delays that `main.ts fleet` adds between the regions of a local fleet. */
export type RegionLatency = z.infer<typeof RegionLatencySchema>;

/** Schema of `deploy.yml`. */
export const ManifestSchema = z.strictObject({
  fleet: z.string().min(1).max(64).describe("Name of the fleet, shown in logs"),
  preset: z.enum(["local", "lan", "wan"]).default("lan").describe(
    "Timing preset of every instance: local (one machine), lan (one data centre), wan (edge regions)",
  ),
  data_dir: z.string().min(1).default(".grapevine").describe(
    "Folder of the KV files of a local fleet (main.ts fleet); a relative path is relative to the manifest",
  ),
  kv_path: KvPathSchema.default(DEFAULT_KV_PATH).describe(
    "KV file of each deployed instance; {id}, {region} and {fleet} are replaced per instance",
  ),
  image: z.string().regex(
    /^[a-z0-9][a-z0-9._\/:@-]*$/,
    "must be a container image reference, such as ghcr.io/example/grapevine:1.0",
  ).optional().describe(
    "Container image the docker and fly targets run; without it they build the rendered Dockerfile",
  ),
  stop_timeout_s: z.int().min(1).max(600).default(15).describe(
    "Seconds an instance has to stop after SIGTERM before it is killed",
  ),
  seeds: z.array(z.string()).optional().describe(
    "Ids of the instances others join through; every instance by default",
  ),
  security: SecuritySchema.prefault({}).describe(
    "Where instances read their secrets: names of environment variables only",
  ),
  settings: SettingsOverridesSchema.default({}).describe(
    "Setting overrides for every instance, by setting name (see main.ts serve --help)",
  ),
  regions: z.array(RegionSchema).min(1),
  region_latency: RegionLatencySchema.optional().describe(
    "Delays between regions that main.ts fleet simulates on one machine through a TCP proxy (Linux only)",
  ),
  targets: TargetsSchema.prefault({}).describe(
    "Options of the files main.ts deploy render writes, by target",
  ),
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
  const regionNames = new Set<string>();
  manifest.regions.forEach((region, r) => {
    if (regionNames.has(region.name)) {
      context.addIssue({
        code: "custom",
        path: ["regions", r, "name"],
        message: `duplicate region name ${region.name}`,
      });
    }
    regionNames.add(region.name);
  });
  checkRegionLatency(manifest.region_latency, regionNames, context);
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

/** Checks that each delay pair names two different regions of the manifest, once. */
function checkRegionLatency(
  latency: RegionLatency | undefined,
  regionNames: ReadonlySet<string>,
  context: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  latency?.pairs.forEach((pair, index) => {
    const path = ["region_latency", "pairs", index, "regions"];
    for (const name of pair.regions) {
      if (!regionNames.has(name)) {
        context.addIssue({
          code: "custom",
          path,
          message: `${name} is not a region of this manifest; expected one of ${
            [...regionNames].join(", ")
          }`,
        });
      }
    }
    const [a, b] = pair.regions;
    if (a === b) {
      context.addIssue({
        code: "custom",
        path,
        message: `must name two different regions, not ${a} twice`,
      });
    }
    const key = [a, b].sort().join(" ");
    if (seen.has(key)) {
      context.addIssue({
        code: "custom",
        path,
        message: `the pair ${a} and ${b} is listed twice`,
      });
    }
    seen.add(key);
  });
}

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
  // The renderers write manifest strings into unit files, env files and
  // YAML, where a line break would start a new directive.
  const control = findControlCharacter(data, []);
  if (control) {
    throw new ManifestError(
      `Manifest ${source} is invalid:\n  ${control}: contains a line break or another control character; remove it`,
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

/** Returns the path of the first string with a control character, if any. */
function findControlCharacter(
  value: unknown,
  path: (string | number)[],
): string | undefined {
  if (typeof value === "string") {
    // deno-lint-ignore no-control-regex
    return /[\u0000-\u001f\u007f]/.test(value)
      ? path.join(".") || "(top level)"
      : undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = findControlCharacter(item, [...path, key]) ??
      findControlCharacter(key, [...path, key]);
    if (found) return found;
  }
  return undefined;
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
    kvPath: join(resolve(baseDir, manifest.data_dir), `${id}.kv`),
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
