/**
 * A small command framework for `main.ts`: each command declares its
 * options once, and parsing, `--help` text and usage errors come from that.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One option of a command. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly help: string;
  /** Placeholder shown in help, such as `URL`. */
  readonly value?: string;
  readonly short?: string;
}

/** Parsed arguments. */
export interface Args {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

/** A subcommand of `main.ts`. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage line after `main.ts NAME`, such as `KEY VALUE [options]`. */
  readonly usage: string;
  /** Extra help text after the option list. */
  readonly details?: string;
  readonly options: Record<string, OptionSpec>;
  /**
   * Commands under this one, such as `simulate rumor`: when the first
   * argument names one, that one runs with the remaining arguments.
   */
  readonly subcommands?: readonly Command[];
  /** Runs the command; returns the process exit code. */
  run(args: Args): Promise<number>;
}

/** A wrong command line; `main.ts` prints it with a pointer to `--help`. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Exit code of a usage error. */
export const EXIT_USAGE = 2;

/** Returns the `--help` text of a command. */
export function helpText(command: Command): string {
  const lines = [
    `Usage: main.ts ${command.name} ${command.usage}`,
    "",
    command.summary,
    "",
    "Options:",
  ];
  const options = { ...command.options, help: helpOption };
  const labels = Object.entries(options).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : "";
    const value = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
    return [`  ${short}--${name}${value}`, spec.help] as const;
  });
  const width = Math.min(
    36,
    Math.max(...labels.map(([label]) => label.length)) + 2,
  );
  for (const [label, help] of labels) {
    if (label.length >= width) {
      lines.push(label, " ".repeat(width) + help);
    } else {
      lines.push(label.padEnd(width) + help);
    }
  }
  if (command.details) lines.push("", command.details);
  return lines.join("\n");
}

const helpOption: OptionSpec = {
  type: "boolean",
  short: "h",
  help: "Show this help",
};

/**
 * Parses arguments for a command and runs it; prints help for `--help`.
 *
 * @throws {UsageError} for unknown options or missing option values.
 */
export async function runCommand(
  command: Command,
  argv: string[],
): Promise<number> {
  const subcommand = command.subcommands?.find((candidate) =>
    candidate.name === argv[0]
  );
  if (subcommand) {
    const name = `${command.name} ${subcommand.name}`;
    return await runCommand({ ...subcommand, name }, argv.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: helpOption },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(
      (error as Error).message.replace(/\. To specify.*$/s, ""),
    );
  }
  if (parsed.values.help) {
    console.log(helpText(command));
    return 0;
  }
  return await command.run({
    values: parsed.values as Args["values"],
    positionals: parsed.positionals,
  });
}

/** Returns a string option, or throws a usage error if it is missing. */
export function requireString(args: Args, name: string): string {
  const value = args.values[name];
  if (typeof value !== "string" || value === "") {
    throw new UsageError(`Missing --${name}`);
  }
  return value;
}

/** Parses a whole-number option within bounds. */
export function intOption(
  args: Args,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = args.values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      `Invalid --${name} ${
        JSON.stringify(text)
      }: expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}
