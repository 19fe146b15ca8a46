/**
 * The `fly` target: one Fly.io app per region, `fly.REGION.toml`, each
 * running the region's instances as Fly Machines with one volume each.
 *
 * Peers dial each other over Fly.io's private IPv6 network: every Machine
 * advertises `http://[FLY_PRIVATE_IP]:PORT` (set by `lib/deploy/fly-start.sh`)
 * and joins through `APP.internal`, the DNS name whose AAAA records list the
 * started Machines of a seed region's app.
 *
 * @module
 */

import { resolve } from "node:path";
import type { Manifest } from "../manifest.ts";
import { dockerfile, kvBaseDir } from "./docker.ts";
import {
  deployedInstances,
  generatedHeader,
  instanceEnv,
  kvPathFor,
  type RenderContext,
  RenderError,
  type RenderResult,
  secretEnvNames,
} from "./plan.ts";

/** Path of the start script inside the image. */
export const FLY_START_SCRIPT = "/app/lib/deploy/fly-start.sh";

const APP_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Returns the Fly.io app name of a region. */
export function flyAppName(manifest: Manifest, region: string): string {
  const prefix = manifest.targets.fly.app_prefix ?? manifest.fleet;
  const name = `${prefix}-${region}`;
  if (!APP_NAME_PATTERN.test(name)) {
    throw new RenderError(
      `Fly.io app name ${
        JSON.stringify(name)
      } is invalid: expected at most 63 lowercase letters, digits and -; set targets.fly.app_prefix in the manifest`,
    );
  }
  return name;
}

/** Renders `fly.REGION.toml` per region, plus the Dockerfile unless the manifest names an image. */
export function renderFly(
  manifest: Manifest,
  context: RenderContext,
): RenderResult {
  const instances = deployedInstances(manifest);
  const port = manifest.targets.fly.port;
  const seedRegions = manifest.regions.filter((region) =>
    instances.some((instance) =>
      instance.region === region.name && instance.seed
    )
  ).map((region) => region.name);

  const files = manifest.regions.map((region, index) => {
    if (region.platform_region === undefined) {
      throw new RenderError(
        `regions.${index}.platform_region: missing; the fly target needs the Fly.io region code of region ${region.name}, such as fra (list them with fly platform regions)`,
      );
    }
    const app = flyAppName(manifest, region.name);
    // Join through the other seed regions. A region that is the only seed
    // region joins through its own app, so its other Machines accept the link.
    const others = seedRegions.filter((name) => name !== region.name);
    const seeds = (others.length > 0 ? others : seedRegions).map((name) =>
      `http://${flyAppName(manifest, name)}.internal:${port}`
    );
    const env = instanceEnv(manifest, {
      region: region.name,
      host: "::",
      port,
      kvPath: kvPathFor(manifest, app, region.name),
      seeds,
    });
    return {
      path: `fly.${region.name}.toml`,
      content: flyConfig(manifest, {
        app,
        region: region.name,
        platformRegion: region.platform_region,
        machines: region.instances.map((instance) => instance.id),
        env,
      }),
    };
  });
  const warnings = [];
  if (manifest.image === undefined) {
    files.push({ path: "Dockerfile", content: dockerfile(manifest) });
    if (resolve(context.outDir) !== resolve(context.projectDir)) {
      warnings.push(
        `fly deploy builds from the folder it runs in; render with --out ${context.projectDir} so that the Dockerfile sits beside the project's files`,
      );
    }
  }
  if (manifest.preset !== "wan") {
    warnings.push(
      `preset is ${manifest.preset}; Fly.io regions are far apart, so consider preset: wan`,
    );
  }
  return { files, warnings };
}

function toml(value: string | number): string {
  // A JSON string is also a valid TOML basic string.
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}

function flyConfig(
  manifest: Manifest,
  app: {
    app: string;
    region: string;
    platformRegion: string;
    machines: string[];
    env: Record<string, string>;
  },
): string {
  const options = manifest.targets.fly;
  const count = app.machines.length;
  const build = manifest.image === undefined
    ? `dockerfile = ${toml("Dockerfile")}`
    : `image = ${toml(manifest.image)}`;
  return [
    `# ${generatedHeader(manifest, "fly")}`,
    `# Region ${app.region} of the manifest (${
      app.machines.join(", ")
    }) as ${count} Fly Machine(s) in ${app.platformRegion}.`,
    `# Deploy: fly deploy --config fly.${app.region}.toml, then`,
    `#   fly scale count ${count} --region ${app.platformRegion} --config fly.${app.region}.toml`,
    `# Secrets: fly secrets set --config fly.${app.region}.toml ${
      secretEnvNames(manifest).map((name) => `${name}=...`).join(" ")
    }`,
    "# Machines pick their own instance ids (REGION-MACHINE_ID) on first start.",
    `app = ${toml(app.app)}`,
    `primary_region = ${toml(app.platformRegion)}`,
    "# serve stops cleanly on SIGTERM; Fly.io sends SIGINT unless told otherwise.",
    `kill_signal = ${toml("SIGTERM")}`,
    `kill_timeout = ${manifest.stop_timeout_s}`,
    "",
    "[build]",
    build,
    "",
    "[env]",
    ...Object.entries(app.env).map(([name, value]) =>
      `${name} = ${toml(value)}`
    ),
    "",
    "[processes]",
    `app = ${toml(FLY_START_SCRIPT)}`,
    "",
    "# One volume per Machine holds its KV file; create them with",
    `#   fly volumes create grapevine_data --region ${app.platformRegion} --count ${count} --config fly.${app.region}.toml`,
    "[[mounts]]",
    `source = ${toml("grapevine_data")}`,
    `destination = ${toml(kvBaseDir(manifest.kv_path))}`,
    "",
    "# Machine checks only: the HTTP API gets no public service, so clients",
    `# reach it through fly proxy ${options.port} --config fly.${app.region}.toml.`,
    "[checks.healthz]",
    `type = ${toml("http")}`,
    `port = ${options.port}`,
    `method = ${toml("get")}`,
    `path = ${toml("/healthz")}`,
    `interval = ${toml("15s")}`,
    `timeout = ${toml("2s")}`,
    `grace_period = ${toml("10s")}`,
    "",
    "[[vm]]",
    `memory = ${toml(`${options.memory_mb}mb`)}`,
    `cpu_kind = ${toml("shared")}`,
    "cpus = 1",
    "",
  ].join("\n");
}
