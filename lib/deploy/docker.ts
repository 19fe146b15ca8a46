/**
 * The `docker` target: a Dockerfile on the official Deno image and a
 * compose file that starts every instance of the manifest as one service.
 *
 * @module
 */

import { posix, relative, resolve } from "node:path";
import { Document } from "yaml";
import { SERVE_PERMISSIONS } from "../cli/fleet.ts";
import type { Manifest } from "../manifest.ts";
import {
  deployedInstances,
  generatedHeader,
  instanceEnv,
  type RenderContext,
  RenderError,
  type RenderResult,
  secretEnvNames,
  seedsFor,
} from "./plan.ts";

/** Port the image listens on when GRAPEVINE_PORT is not set. */
export const IMAGE_PORT = 8000;

/** Folder of the project inside the image. */
export const IMAGE_APP_DIR = "/app";

/**
 * Returns the folder that contains every instance's KV file: the part of the
 * `kv_path` pattern before its first placeholder, up to the last `/`.
 * Containers mount their volume there.
 */
export function kvBaseDir(pattern: string): string {
  const fixed = pattern.slice(0, pattern.indexOf("{"));
  const dir = fixed.slice(0, fixed.lastIndexOf("/"));
  return dir === "" ? "/" : dir;
}

/** Renders `Dockerfile`, `.dockerignore` and `compose.yaml`. */
export function renderDocker(
  manifest: Manifest,
  context: RenderContext,
): RenderResult {
  const warnings = [];
  if (resolve(context.outDir) !== resolve(context.projectDir)) {
    warnings.push(
      `Docker reads .dockerignore only from the build context ${context.projectDir}; render with --out ${context.projectDir} or copy the file there`,
    );
  }
  return {
    files: [
      { path: "Dockerfile", content: dockerfile(manifest) },
      { path: ".dockerignore", content: dockerignore(manifest) },
      { path: "compose.yaml", content: composeFile(manifest, context) },
    ],
    warnings,
  };
}

/** Returns the Dockerfile; the fly target builds the same one. */
export function dockerfile(manifest: Manifest): string {
  const kvDir = kvBaseDir(manifest.kv_path);
  const run = [
    "deno",
    "run",
    ...SERVE_PERMISSIONS,
    "main.ts",
    "serve",
  ];
  const probe =
    "const response = await fetch(`http://127.0.0.1:${Deno.env.get('GRAPEVINE_PORT')}/healthz`); Deno.exit(response.ok ? 0 : 1)";
  return [
    `# ${generatedHeader(manifest, "docker")}`,
    `FROM ${manifest.targets.docker.base_image}`,
    "",
    "# The official image runs as root unless told otherwise; its user deno",
    "# owns the project folder and the KV folder, which a volume replaces.",
    `RUN mkdir -p ${IMAGE_APP_DIR} ${kvDir} && chown deno:deno ${IMAGE_APP_DIR} ${kvDir}`,
    `WORKDIR ${IMAGE_APP_DIR}`,
    "USER deno",
    "",
    "COPY --chown=deno:deno deno.json deno.lock main.ts ./",
    "COPY --chown=deno:deno lib ./lib",
    "# Download the npm packages at build time, so that start needs no registry.",
    "RUN deno install --entrypoint main.ts",
    "",
    "# Every setting can be changed with its GRAPEVINE_* variable; see",
    "# `main.ts serve --help`. Listen on all interfaces of the container.",
    "ENV GRAPEVINE_HOST=0.0.0.0 \\",
    `    GRAPEVINE_PORT=${IMAGE_PORT} \\`,
    "    GRAPEVINE_LOG_FORMAT=json",
    `EXPOSE ${IMAGE_PORT}`,
    `VOLUME ${kvDir}`,
    "",
    "HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \\",
    `  CMD ${JSON.stringify(["deno", "eval", probe])}`,
    "",
    "# serve stops cleanly on SIGTERM: it says goodbye to its peers and",
    "# flushes pending KV commits.",
    "STOPSIGNAL SIGTERM",
    `CMD ${JSON.stringify(run)}`,
    "",
  ].join("\n");
}

function dockerignore(manifest: Manifest): string {
  return [
    `# ${generatedHeader(manifest, "docker")}`,
    ".git",
    ".github",
    `${manifest.data_dir}`,
    "node_modules",
    "*.kv",
    "*.kv-shm",
    "*.kv-wal",
    "",
  ].join("\n");
}

/** Returns a compose service or project name made of `[a-z0-9-]`. */
export function composeName(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(
    /^-+/,
    "",
  );
}

function composeFile(manifest: Manifest, context: RenderContext): string {
  const instances = deployedInstances(manifest);
  const serviceOf = new Map<string, string>();
  for (const instance of instances) {
    const service = composeName(instance.id);
    const other = [...serviceOf].find(([, name]) => name === service);
    if (other) {
      throw new RenderError(
        `Instances ${
          other[0]
        } and ${instance.id} both map to the compose service ${service}; rename one of them`,
      );
    }
    serviceOf.set(instance.id, service);
  }
  // Containers reach each other by service name on the compose network.
  const seeds = instances.filter((instance) => instance.seed).map((
    instance,
  ) => ({
    id: instance.id,
    url: `http://${serviceOf.get(instance.id)}:${instance.port}`,
  }));
  const buildContext = relative(context.outDir, context.projectDir) || ".";
  const dockerfilePath = relative(
    context.projectDir,
    `${context.outDir}/Dockerfile`,
  );
  const kvDir = kvBaseDir(manifest.kv_path);

  const services: Record<string, unknown> = {};
  const volumes: Record<string, null> = {};
  for (const instance of instances) {
    const service = serviceOf.get(instance.id)!;
    const environment: Record<string, string | null> = instanceEnv(manifest, {
      id: instance.id,
      region: instance.region,
      host: "0.0.0.0",
      port: instance.port,
      advertiseUrl: `http://${service}:${instance.port}`,
      kvPath: instance.kvPath,
      seeds: seedsFor(instance, seeds),
    });
    // A variable without a value is taken from the shell that runs compose,
    // so secrets stay out of this file.
    for (const name of secretEnvNames(manifest)) environment[name] = null;
    const volume = `${service}-data`;
    volumes[volume] = null;
    services[service] = {
      ...(manifest.image ? { image: manifest.image } : {
        image: `grapevine-${composeName(manifest.fleet)}:local`,
        build: {
          context: buildContext.split("\\").join(posix.sep),
          dockerfile: dockerfilePath.split("\\").join(posix.sep),
        },
      }),
      hostname: service,
      environment,
      // Published on the host's loopback interface only.
      ports: [`127.0.0.1:${instance.port}:${instance.port}`],
      volumes: [`${volume}:${kvDir}`],
      stop_signal: "SIGTERM",
      stop_grace_period: `${manifest.stop_timeout_s}s`,
      restart: "unless-stopped",
    };
  }

  const document = new Document({
    name: `grapevine-${composeName(manifest.fleet)}`,
    services,
    volumes,
  }, { aliasDuplicateObjects: false });
  document.commentBefore = [
    ` ${generatedHeader(manifest, "docker")}`,
    ` Start: docker compose up --build --detach`,
    ` Secrets (${
      secretEnvNames(manifest).join(", ")
    }) come from the shell that runs docker compose.`,
  ].join("\n");
  return document.toString({ lineWidth: 0, nullStr: "" });
}
