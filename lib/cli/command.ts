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
   * Subcommands, named `PARENT NAME` (such as `deploy render`). When a
   * command has them, its first argument picks one and `run` is not called.
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

/** Returns the `--help` text of a command that has subcommands. */
export function groupHelpText(command: Command): string {
  const subcommands = command.subcommands ?? [];
  const names = subcommands.map((sub) => sub.name.split(" ").pop()!);
  const width = Math.max(...names.map((name) => name.length)) + 2;
  return [
    `Usage: main.ts ${command.name} ${command.usage}`,
    "",
    command.summary,
    "",
    "Subcommands:",
    ...subcommands.map((sub, index) =>
      `  ${names[index]!.padEnd(width)}${
        sub.summary.split(". ")[0]!.replace(/\.$/, "")
      }`
    ),
    "",
    `Run main.ts ${command.name} SUBCOMMAND --help for the options of a subcommand.`,
  ].join("\n");
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
  if (command.subcommands) return await runSubcommand(command, argv);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, help: helpOption },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify.*$/s, "");
    const unknown = /Unknown option '--([^']+)'/.exec(message)?.[1];
    const suggestion = unknown === undefined
      ? undefined
      : closestName(unknown, Object.keys(command.options));
    throw new UsageError(
      suggestion === undefined
        ? message
        : `${message}; did you mean --${suggestion}?`,
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

async function runSubcommand(
  command: Command,
  argv: string[],
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(groupHelpText(command));
    return 0;
  }
  const subcommands = command.subcommands ?? [];
  const expected = subcommands.map((sub) => sub.name.split(" ").pop()!);
  if (name === undefined) {
    throw new UsageError(
      `Missing subcommand of ${command.name}; expected ${
        expected.join(" or ")
      }`,
    );
  }
  // Subcommands may be named `sub` or `parent sub`.
  const fullName = `${command.name} ${name}`;
  const found = subcommands.find((candidate) =>
    candidate.name === fullName || candidate.name === name
  );
  const sub = found && { ...found, name: fullName };
  if (!sub) {
    const suggestion = closestName(name, expected);
    throw new UsageError(
      `Unknown subcommand ${JSON.stringify(name)} of ${command.name}; ${
        suggestion === undefined
          ? `expected ${expected.join(" or ")}`
          : `did you mean ${suggestion}?`
      }`,
    );
  }
  return await runCommand(sub, rest);
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

/**
 * Returns the candidate nearest to `name` by edit distance, for "did you
 * mean" hints; `undefined` when every candidate is more than 2 edits away.
 */
export function closestName(
  name: string,
  candidates: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(
        Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
