/**
 * `main.ts deploy render`: writes the files of one deploy target from a
 * manifest.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { Manifest } from "../manifest.ts";
import { renderDenoDeploy } from "./deno_deploy.ts";
import { renderDocker } from "./docker.ts";
import { renderFly } from "./fly.ts";
import { renderGithub } from "./github.ts";
import type { RenderContext, RenderResult } from "./plan.ts";
import { renderSystemd } from "./systemd.ts";

export { RenderError, type RenderResult } from "./plan.ts";

/** Renderers by target name. */
export const TARGETS: Record<
  string,
  (manifest: Manifest, context: RenderContext) => RenderResult
> = {
  docker: renderDocker,
  systemd: renderSystemd,
  fly: renderFly,
  "deno-deploy": renderDenoDeploy,
  github: renderGithub,
};

/** Names of the targets, in the order of the documentation. */
export const TARGET_NAMES = Object.keys(TARGETS);

/** Writes every file of a render result under `outDir`; returns their paths. */
export async function writeRendered(
  result: RenderResult,
  outDir: string,
): Promise<string[]> {
  const written = [];
  for (const file of result.files) {
    const path = join(outDir, file.path);
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, file.content, { mode: file.mode ?? 0o644 });
    written.push(path);
  }
  return written;
}
