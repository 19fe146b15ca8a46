/**
 * Grapevine command line: run instances and fleets, push and read config.
 *
 * ```sh
 * deno run -A main.ts fleet            # start the local fleet of deploy.yml
 * deno run -A main.ts push KEY VALUE   # set a key through the first instance
 * deno run -A main.ts status           # check that every instance agrees
 * deno run -A main.ts watch PREFIX     # print changes as they happen
 * deno run -A main.ts deploy render --target docker --out .
 * ```
 *
 * @module
 */

import {
  closestName,
  type Command,
  EXIT_USAGE,
  runCommand,
  UsageError,
} from "./lib/cli/command.ts";
import {
  deleteCommand,
  getCommand,
  listCommand,
  pushCommand,
} from "./lib/cli/config_commands.ts";
import { deployCommand } from "./lib/cli/deploy.ts";
import { fleetCommand, FleetError } from "./lib/cli/fleet.ts";
import { keygenCommand } from "./lib/cli/keygen.ts";
import { serveCommand } from "./lib/cli/serve.ts";
import { simulateCommand } from "./lib/cli/simulate.ts";
import { statusCommand } from "./lib/cli/status.ts";
import { watchCommand } from "./lib/cli/watch.ts";
import { ClientError } from "./lib/client.ts";
import { ConfigFileError } from "./lib/config_file.ts";
import { SettingsError } from "./lib/config.ts";
import { StartError } from "./lib/instance.ts";
import { ManifestError } from "./lib/manifest.ts";
import { RenderError } from "./lib/deploy/render.ts";
import { PublisherKeyError } from "./lib/security/signatures.ts";

const COMMANDS: Command[] = [
  serveCommand,
  fleetCommand,
  pushCommand,
  getCommand,
  deleteCommand,
  listCommand,
  statusCommand,
  watchCommand,
  deployCommand,
  keygenCommand,
  simulateCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return [
    "Usage: main.ts COMMAND [options]",
    "",
    "Grapevine keeps configuration identical on every instance of a fleet, by gossip over WebSockets.",
    "",
    "Commands:",
    ...COMMANDS.map((command) =>
      `  ${command.name.padEnd(width)}${
        command.summary.split(". ")[0]!.replace(/\.$/, "")
      }`
    ),
    "",
    "Run main.ts COMMAND --help for the options of a command.",
  ].join("\n");
}

/** Runs the command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    console.log(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    const suggestion = closestName(
      name,
      COMMANDS.map((candidate) => candidate.name),
    );
    console.error(
      suggestion === undefined
        ? `Unknown command ${JSON.stringify(name)}.\n\n${usage()}`
        : `Unknown command ${
          JSON.stringify(name)
        }; did you mean ${suggestion}?\nRun main.ts --help for all commands.`,
    );
    return EXIT_USAGE;
  }
  try {
    return await runCommand(command, rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\nRun main.ts ${name} --help for usage.`);
      return EXIT_USAGE;
    }
    const known = error instanceof ClientError ||
      error instanceof SettingsError || error instanceof StartError ||
      error instanceof ManifestError || error instanceof ConfigFileError ||
      error instanceof FleetError ||
      error instanceof RenderError || error instanceof PublisherKeyError ||
      error instanceof Deno.errors.NotFound;
    if (known) {
      console.error(`error: ${(error as Error).message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
