/**
 * `main.ts deploy`: writes deployment files from the manifest (`render`)
 * and the manifest's JSON Schema (`schema`).
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TARGET_NAMES, TARGETS, writeRendered } from "../deploy/render.ts";
import { manifestJsonSchema, SCHEMA_PATH } from "../deploy/schema.ts";
import { loadManifest } from "../manifest.ts";
import { type Command, requireString, UsageError } from "./command.ts";
import { manifestPath } from "./fleet.ts";

const renderCommand: Command = {
  name: "deploy render",
  usage: "--target NAME [--out DIR] [options]",
  summary:
    "Write the deployment files of one target, or of all of them, from the manifest.",
  details: [
    "Targets:",
    "  docker       Dockerfile, .dockerignore and compose.yaml with one service per instance",
    "  systemd      systemd/grapevine-ID.service per instance and systemd/grapevine.env.example",
    "  fly          fly.REGION.toml per region, and the Dockerfile unless the manifest sets image",
    "  deno-deploy  deno-deploy/app.env and deno-deploy/README.md for a Deno Deploy app",
    "  github       .github/workflows/grapevine.yml: check, test, and deploy to Fly.io",
    "Existing files with the same names are overwritten. Warnings about manifest values",
    "that will not work on the target go to stderr. See docs/DEPLOY.md for each target's steps.",
  ].join("\n"),
  options: {
    target: {
      type: "string",
      value: "NAME",
      help: `Target to render: ${TARGET_NAMES.join(", ")} or all`,
    },
    out: {
      type: "string",
      value: "DIR",
      help: "Folder to write the files to (default: the current folder)",
    },
    manifest: {
      type: "string",
      value: "PATH",
      help: "Fleet manifest (default: deploy.yml of this repository)",
    },
  },
  async run(args) {
    const target = requireString(args, "target");
    if (target !== "all" && !(target in TARGETS)) {
      throw new UsageError(
        `Unknown --target ${JSON.stringify(target)}: expected ${
          TARGET_NAMES.join(", ")
        } or all`,
      );
    }

    const out = typeof args.values.out === "string" ? args.values.out : ".";
    const path = manifestPath(args);
    const manifest = await loadManifest(path);
    const context = {
      projectDir: dirname(resolve(path)),
      outDir: resolve(out),
    };
    const names = target === "all" ? TARGET_NAMES : [target];

    // Render every target before writing any file, so that a manifest
    // error leaves the output folder unchanged.
    const results = names.map((name) => ({
      name,
      result: TARGETS[name]!(manifest, context),
    }));

    for (const { name, result } of results) {
      for (const warning of result.warnings) {
        console.error(`warning (${name}): ${warning}`);
      }
      for (const written of await writeRendered(result, context.outDir)) {
        console.log(`wrote ${written}`);
      }
    }
    return 0;
  },
};

const schemaCommand: Command = {
  name: "deploy schema",
  usage: "[--out PATH | --check]",
  summary:
    "Write the JSON Schema of the manifest, generated from its zod schema, for editors to complete deploy.yml.",
  details:
    "deploy.yml names the schema in its first line (# yaml-language-server: $schema=./deploy.schema.json).",
  options: {
    out: {
      type: "string",
      value: "PATH",
      help:
        "File to write, or - for stdout (default: deploy.schema.json of this repository)",
    },
    check: {
      type: "boolean",
      help:
        "Exit 1 if the file differs from the generated schema, without writing it",
    },
  },
  async run(args) {
    const text = manifestJsonSchema();
    const out = typeof args.values.out === "string"
      ? args.values.out
      : fileURLToPath(SCHEMA_PATH);
    if (out === "-") {
      if (args.values.check) {
        throw new UsageError("--check needs a file, not -");
      }
      console.log(text.trimEnd());
      return 0;
    }
    if (args.values.check) {
      let current = "";
      try {
        current = await Deno.readTextFile(out);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      if (current !== text) {
        console.error(
          `${out} is out of date with lib/manifest.ts; run main.ts deploy schema to regenerate it`,
        );
        return 1;
      }
      console.log(`${out} is up to date`);
      return 0;
    }
    await Deno.writeTextFile(out, text);
    console.log(`wrote ${out}`);
    return 0;
  },
};

/** The `deploy` command and its subcommands. */
export const deployCommand: Command = {
  name: "deploy",
  usage: "SUBCOMMAND [options]",
  summary:
    "Write deployment files from the manifest: render for containers, systemd, Fly.io, Deno Deploy and GitHub Actions, schema for deploy.schema.json.",
  options: {},
  subcommands: [renderCommand, schemaCommand],
  run() {
    // runCommand hands the arguments to a subcommand instead.
    return Promise.reject(new UsageError("Missing subcommand of deploy"));
  },
};
