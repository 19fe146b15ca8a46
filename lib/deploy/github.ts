/**
 * The `github` target: a GitHub Actions workflow that checks and tests the
 * project on every push and pull request, and deploys pushes to the
 * manifest's branch.
 *
 * @module
 */

import { Document } from "yaml";
import type { Manifest } from "../manifest.ts";
import { flyAppName } from "./fly.ts";
import { generatedHeader, type RenderResult } from "./plan.ts";

/** Path of the workflow, relative to the output folder. */
export const WORKFLOW_PATH = ".github/workflows/grapevine.yml";

/**
 * Deno through npm, as the project's CI script runs it, so the runner needs
 * only Node.js.
 */
const DENO = "npx -y deno@2";

/** Renders `.github/workflows/grapevine.yml`. */
export function renderGithub(manifest: Manifest): RenderResult {
  const options = manifest.targets.github;
  const checkout = { uses: "actions/checkout@v4" };
  const node = {
    uses: "actions/setup-node@v4",
    with: { "node-version": "22" },
  };
  const jobs: Record<string, unknown> = {
    check: {
      "runs-on": "ubuntu-latest",
      steps: [
        checkout,
        node,
        { name: "Format", run: `${DENO} fmt --check` },
        { name: "Lint", run: `${DENO} lint` },
        { name: "Type-check", run: `${DENO} check main.ts lib/ tests/` },
        {
          name: "Check the manifest and its JSON Schema",
          run: `${DENO} run -A main.ts deploy schema --check`,
        },
      ],
    },
    test: {
      "runs-on": "ubuntu-latest",
      needs: "check",
      "timeout-minutes": 30,
      steps: [checkout, node, {
        name: "Test",
        run: `${DENO} task test`,
      }],
    },
  };
  if (options.deploy === "fly") {
    jobs.deploy = {
      "runs-on": "ubuntu-latest",
      needs: ["check", "test"],
      if:
        `github.event_name == 'push' && github.ref == 'refs/heads/${options.branch}'`,
      environment: "production",
      concurrency: { group: "deploy", "cancel-in-progress": false },
      env: { FLY_API_TOKEN: "${{ secrets.FLY_API_TOKEN }}" },
      steps: [
        checkout,
        node,
        {
          name: "Render the Fly.io configs from deploy.yml",
          run: `${DENO} run -A main.ts deploy render --target fly --out .`,
        },
        { uses: "superfly/flyctl-actions/setup-flyctl@master" },
        ...manifest.regions.map((region) => ({
          name: `Deploy region ${region.name} (${
            flyAppName(manifest, region.name)
          })`,
          run: `flyctl deploy --remote-only --config fly.${region.name}.toml`,
        })),
      ],
    };
  }
  const document = new Document({
    name: "grapevine",
    on: {
      push: { branches: [options.branch] },
      pull_request: null,
    },
    permissions: { contents: "read" },
    jobs,
  }, { aliasDuplicateObjects: false });
  document.commentBefore = [
    ` ${generatedHeader(manifest, "github")}`,
    options.deploy === "fly"
      ? " The deploy job needs the repository secret FLY_API_TOKEN (fly tokens create deploy)."
      : " targets.github.deploy is none, so this workflow deploys nothing.",
  ].join("\n");
  return {
    files: [{
      path: WORKFLOW_PATH,
      content: document.toString({ lineWidth: 0, nullStr: "" }),
    }],
    warnings: [],
  };
}
