/**
 * The `systemd` target: one service unit per instance, for VMs that run a
 * copy of this repository and a deno executable.
 *
 * @module
 */

import { SERVE_PERMISSIONS } from "../cli/fleet.ts";
import type { Manifest } from "../manifest.ts";
import { kvBaseDir } from "./docker.ts";
import {
  type DeployedInstance,
  deployedInstances,
  generatedHeader,
  instanceEnv,
  type RenderResult,
  secretEnvNames,
  seedsFor,
} from "./plan.ts";

/** Returns the unit file name of an instance, such as `grapevine-eu-west-1.service`. */
export function unitName(id: string): string {
  return `grapevine-${id}.service`;
}

/** Renders `systemd/grapevine-ID.service` per instance and an example secrets file. */
export function renderSystemd(manifest: Manifest): RenderResult {
  const instances = deployedInstances(manifest);
  const seeds = instances.filter((instance) => instance.seed);
  const files = instances.map((instance) => ({
    path: `systemd/${unitName(instance.id)}`,
    content: unitFile(manifest, instance, seedsFor(instance, seeds)),
  }));
  files.push({
    path: "systemd/grapevine.env.example",
    content: envFileExample(manifest),
  });
  const warnings = [];
  const loopback = instances.filter((instance) =>
    /^(127\.|localhost$|::1$)/.test(instance.host)
  );
  if (loopback.length > 0) {
    warnings.push(
      `Instances ${
        loopback.map((instance) => instance.id).join(", ")
      } listen on a loopback address, so only instances on the same VM can reach them; set host (such as 0.0.0.0) and url in deploy.yml for a fleet of several VMs`,
    );
  }
  return { files, warnings };
}

/** Formats one `Environment=` line, quoting and escaping as systemd.exec(5) requires. */
export function environmentLine(name: string, value: string): string {
  // systemd expands % specifiers in Environment= values; %% is a literal %.
  const escaped = `${name}=${value}`.replaceAll("%", "%%");
  if (!/[\s"'\\]/.test(escaped)) return `Environment=${escaped}`;
  return `Environment="${escaped.replace(/["\\]/g, (char) => `\\${char}`)}"`;
}

function unitFile(
  manifest: Manifest,
  instance: DeployedInstance,
  seeds: string[],
): string {
  const options = manifest.targets.systemd;
  const env = instanceEnv(manifest, {
    id: instance.id,
    region: instance.region,
    host: instance.host,
    port: instance.port,
    advertiseUrl: instance.url,
    kvPath: instance.kvPath,
    seeds,
  });
  const kvDir = kvBaseDir(manifest.kv_path);
  const stateDirectory = kvDir.startsWith("/var/lib/")
    ? [`StateDirectory=${kvDir.slice("/var/lib/".length)}`]
    : [
      `# ${kvDir} must exist and belong to ${options.user} before the first start.`,
      `ReadWritePaths=${kvDir}`,
    ];
  const execStart = [
    options.deno_path,
    "run",
    "--config",
    `${options.install_dir}/deno.json`,
    ...SERVE_PERMISSIONS,
    `${options.install_dir}/main.ts`,
    "serve",
  ].join(" ");
  return [
    `# ${generatedHeader(manifest, "systemd")}`,
    `# Install: copy to /etc/systemd/system/, then systemctl daemon-reload && systemctl enable --now ${
      unitName(instance.id)
    }`,
    "[Unit]",
    `Description=Grapevine instance ${instance.id} (fleet ${manifest.fleet}, region ${instance.region})`,
    "After=network-online.target",
    "Wants=network-online.target",
    // At most 5 starts in 60 s, then systemd stops restarting it.
    "StartLimitIntervalSec=60",
    "StartLimitBurst=5",
    "",
    "[Service]",
    "Type=exec",
    `User=${options.user}`,
    `Group=${options.user}`,
    `WorkingDirectory=${options.install_dir}`,
    // CacheDirectory= creates /var/cache/grapevine for the user; Deno keeps
    // its module cache there.
    "CacheDirectory=grapevine",
    "Environment=DENO_DIR=/var/cache/grapevine/deno",
    "Environment=NO_COLOR=1",
    ...Object.entries(env).map(([name, value]) => environmentLine(name, value)),
    `# Secrets (${
      secretEnvNames(manifest).join(", ")
    }) come from this file, never from the unit.`,
    `EnvironmentFile=${options.env_file}`,
    `ExecStart=${execStart}`,
    "# serve stops cleanly on SIGTERM: it says goodbye to its peers and",
    "# flushes pending KV commits, then exits 0.",
    "KillSignal=SIGTERM",
    `TimeoutStopSec=${manifest.stop_timeout_s}`,
    "Restart=on-failure",
    "RestartSec=2",
    ...stateDirectory,
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectSystem=full",
    "ProtectHome=yes",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

function envFileExample(manifest: Manifest): string {
  return [
    `# ${generatedHeader(manifest, "systemd")}`,
    `# Copy to ${manifest.targets.systemd.env_file} on each VM with mode 600 and owner root,`,
    "# then fill in the values. Never commit the filled-in file.",
    ...secretEnvNames(manifest).map((name) => `${name}=`),
    "",
  ].join("\n");
}
