/**
 * The `deno-deploy` target: the environment of a Deno Deploy app that
 * joins the fleet, and the steps to create it.
 *
 * Deno Deploy routes requests to isolates it starts and stops itself, so
 * peers cannot dial an instance there. The instance advertises no URL
 * (`GRAPEVINE_ADVERTISE_URL=none`) and dials out to the manifest's seeds.
 * Gossip and anti-entropy then run over those outbound links in both
 * directions.
 *
 * @module
 */

import type { Manifest } from "../manifest.ts";
import {
  deployedInstances,
  generatedHeader,
  instanceEnv,
  type RenderResult,
  secretEnvNames,
} from "./plan.ts";

/** Entrypoint module of the Deno Deploy app, relative to the project root. */
export const DENO_DEPLOY_ENTRYPOINT = "lib/deploy/deno_deploy_entry.ts";

/** Hosts that an instance on Deno Deploy cannot reach. */
const PRIVATE_HOST =
  /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|0\.0\.0\.0|\[::1?\]|\[f[cd])/;

/** Returns the Deno Deploy app name. */
export function denoDeployAppName(manifest: Manifest): string {
  return manifest.targets.deno_deploy.app ?? manifest.fleet;
}

/** Renders `deno-deploy/app.env` and `deno-deploy/README.md`. */
export function renderDenoDeploy(manifest: Manifest): RenderResult {
  const options = manifest.targets.deno_deploy;
  const app = denoDeployAppName(manifest);
  const seeds = deployedInstances(manifest).filter((instance) => instance.seed);
  const env = instanceEnv(manifest, {
    id: app,
    region: options.region,
    host: "0.0.0.0",
    port: 8000,
    advertiseUrl: "none",
    seeds: seeds.map((seed) => seed.url),
  });
  const warnings = [];
  const unreachable = seeds.filter((seed) =>
    PRIVATE_HOST.test(new URL(seed.url).host)
  );
  if (unreachable.length > 0) {
    warnings.push(
      `Seeds ${
        unreachable.map((seed) => `${seed.id} (${seed.url})`).join(", ")
      } have private or loopback URLs that Deno Deploy cannot reach; set url in deploy.yml to each seed's public address`,
    );
  }
  if (manifest.preset !== "wan") {
    warnings.push(
      `preset is ${manifest.preset}; links from Deno Deploy to the seeds cross the internet, so consider preset: wan`,
    );
  }
  const envFile = [
    `# ${generatedHeader(manifest, "deno-deploy")}`,
    `# Environment of the Deno Deploy app ${app}. Set each line as a plain variable;`,
    `# set ${secretEnvNames(manifest).join(" and ")} as secrets, never here.`,
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    "",
  ].join("\n");
  return {
    files: [
      { path: "deno-deploy/app.env", content: envFile },
      { path: "deno-deploy/README.md", content: readme(manifest, app, env) },
    ],
    warnings,
  };
}

/**
 * Wraps Markdown paragraphs and list items at `width` columns, as
 * `deno fmt` does, so a rendered README passes `deno fmt --check`. Each
 * block of the input is one paragraph, list item or heading on one line.
 */
export function wrapMarkdown(blocks: string[], width = 80): string {
  const wrapped = blocks.map((block) => {
    if (block.startsWith("#") || block.startsWith("<!--")) return block;
    const marker = /^(\d+\. |- )/.exec(block)?.[0] ?? "";
    const indent = " ".repeat(marker.length);
    const lines: string[] = [];
    let line = marker;
    for (const word of block.slice(marker.length).split(" ")) {
      const start = line === marker || line === indent;
      if (!start && line.length + 1 + word.length > width) {
        lines.push(line);
        line = indent + word;
      } else {
        line += (start ? "" : " ") + word;
      }
    }
    lines.push(line);
    return lines.join("\n");
  });
  return wrapped.join("\n\n") + "\n";
}

function readme(
  manifest: Manifest,
  app: string,
  env: Record<string, string>,
): string {
  const secrets = secretEnvNames(manifest).map((name) => `\`${name}\``);
  const seeds = env.GRAPEVINE_SEEDS!.split(",").map((url) => `- ${url}`);
  return wrapMarkdown([
    `<!-- ${generatedHeader(manifest, "deno-deploy")} -->`,
    `# Deno Deploy app ${app}`,
    `One Grapevine instance on Deno Deploy that joins fleet ${manifest.fleet} through its seeds:`,
    ...seeds,
    "Deno Deploy cannot be dialled by peers, so the instance advertises no URL (`GRAPEVINE_ADVERTISE_URL=none`) and opens WebSocket links to the seeds itself. Entries travel both ways over those links. The seeds must be reachable from the internet.",
    "## Steps",
    `1. Create an app named \`${app}\` in the Deno Deploy console (console.deno.com), linked to this repository, with the entrypoint \`${DENO_DEPLOY_ENTRYPOINT}\`. The \`deno deploy create\` command does the same from a terminal; run \`deno deploy create --help\` for the flags of your Deno version.`,
    "2. Provision a Deno KV database for the app (Databases in the console). The entrypoint opens it with `Deno.openKv()` because `app.env` sets no `GRAPEVINE_KV_PATH`.",
    "3. Add every line of `app.env` as a plain environment variable of the app, in the Production context.",
    `4. Add ${secrets.join(" and ")} as secrets of the app.`,
    "5. Deploy (push to the linked branch, or run `deno deploy --prod`).",
    `6. Check that a seed lists the instance: \`GET SEED_URL/v1/status\` has a link from \`${app}\` under \`links\`, and \`${app}\` with \`"url": null\` under \`members\`.`,
  ]);
}
