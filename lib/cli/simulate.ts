/**
 * `main.ts simulate`: runs the epidemic experiments on the simulator,
 * prints each table and writes its plot as SVG.
 *
 * @module
 */

import { join } from "node:path";
import { antiEntropyExperiment } from "../sim/experiments/anti_entropy.ts";
import type { ExperimentResult } from "../sim/experiments/common.ts";
import { offlineExperiment } from "../sim/experiments/offline.ts";
import {
  rumorExperiment,
  type RumorVariant,
} from "../sim/experiments/rumor.ts";
import { rumorAeExperiment } from "../sim/experiments/rumor_ae.ts";
import { sirExperiment } from "../sim/experiments/sir.ts";
import { defaultProcesses, runJobs } from "../sim/parallel.ts";
import { renderSvg } from "../sim/svg.ts";
import { formatTable } from "../sim/table.ts";
import type { AntiEntropyMode } from "../sim/theory.ts";
import {
  type Args,
  type Command,
  intOption,
  type OptionSpec,
  UsageError,
} from "./command.ts";

const COMMON: Record<string, OptionSpec> = {
  seed: {
    type: "string",
    value: "N",
    help: "Seed of the run; the same seed prints the same table (default 1)",
  },
  out: {
    type: "string",
    value: "DIR",
    help:
      "Folder to write the SVG plot to (default simulate-plots in the current folder; the committed plots were written with --out docs/plots)",
  },
  runs: {
    type: "string",
    value: "N",
    help:
      "Seeded runs averaged per table row (default: sir 20, anti-entropy 3, rumor 50, rumor-ae 10, offline 10)",
  },
};

/** Parses a list of whole numbers: `1..5`, `1,2,4` or `7`. */
export function parseIntList(
  text: string,
  name: string,
  min: number,
  max: number,
): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(text.trim());
  const values = range
    ? Array.from(
      { length: Math.max(0, Number(range[2]) - Number(range[1]) + 1) },
      (_, i) => Number(range[1]) + i,
    )
    : text.split(",").map((part) => Number(part.trim()));
  const valid = values.length > 0 &&
    values.every((value) =>
      Number.isInteger(value) && value >= min && value <= max
    );
  if (!valid) {
    throw new UsageError(
      `Invalid --${name} ${
        JSON.stringify(text)
      }: expected whole numbers from ${min} to ${max}, as a list (1,2,4) or a range (1..5)`,
    );
  }
  return values;
}

function listOption(
  args: Args,
  name: string,
  fallback: number[],
  min: number,
  max: number,
): number[] {
  const text = args.values[name];
  return typeof text === "string"
    ? parseIntList(text, name, min, max)
    : fallback;
}

function fractionOption(args: Args, name: string, fallback: number): number {
  const text = args.values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value >= 0 && value < 1) || String(text).trim() === "") {
    throw new UsageError(
      `Invalid --${name} ${
        JSON.stringify(text)
      }: expected a fraction from 0 up to (not including) 1`,
    );
  }
  return value;
}

function choiceList<T extends string>(
  args: Args,
  name: string,
  choices: readonly T[],
): T[] {
  const text = args.values[name];
  if (typeof text !== "string") return [...choices];
  const picked = text.split(",").map((part) => part.trim());
  for (const choice of picked) {
    if (!choices.includes(choice as T)) {
      throw new UsageError(
        `Invalid --${name} ${JSON.stringify(choice)}: expected ${
          choices.join(", ")
        } or a comma-separated list of them`,
      );
    }
  }
  return picked as T[];
}

function seedOption(args: Args): number {
  return intOption(args, "seed", 1, 0, 2 ** 32 - 1);
}

function processesOption(args: Args): number {
  return intOption(args, "processes", defaultProcesses(), 1, 64);
}

/** Prints a result, writes its plot, and returns exit code 0. */
async function report(
  result: ExperimentResult,
  args: Args,
  startMs: number,
): Promise<number> {
  const folder = typeof args.values.out === "string"
    ? args.values.out
    : "simulate-plots";
  await Deno.mkdir(folder, { recursive: true });
  const path = join(folder, result.plotFile);
  await Deno.writeTextFile(path, renderSvg(result.plot));
  console.log(`${result.title}\n`);
  console.log(formatTable(result.columns, result.rows));
  console.log("");
  for (const note of result.notes) console.log(note);
  const seconds = ((performance.now() - startMs) / 1000).toFixed(1);
  console.log(`\nwrote ${path} (${seconds} s)`);
  return 0;
}

const processesSpec: OptionSpec = {
  type: "string",
  value: "N",
  help: "Child processes that run seeded runs in parallel (default: CPU cores)",
};

const sirCommand: Command = {
  name: "sir",
  usage: "[options]",
  summary:
    "Fractions of susceptible, infective and removed nodes per round for one rumor, next to the SIR equations with matching beta and gamma.",
  options: {
    ...COMMON,
    n: { type: "string", value: "N", help: "Nodes (default 1000)" },
    k: {
      type: "string",
      value: "K",
      help: "Pushes before a node stops (default 4)",
    },
    fanout: {
      type: "string",
      value: "F",
      help: "Peers pushed to per round (default 1)",
    },
    rounds: {
      type: "string",
      value: "R",
      help: "Rounds to simulate (default 30)",
    },
  },
  run(args) {
    const start = performance.now();
    const result = sirExperiment({
      n: intOption(args, "n", 1000, 2, 100_000),
      k: intOption(args, "k", 4, 1, 100),
      fanout: intOption(args, "fanout", 1, 1, 32),
      rounds: intOption(args, "rounds", 30, 1, 1000),
      runs: intOption(args, "runs", 20, 1, 10_000),
      seed: seedOption(args),
    });
    return report(result, args, start);
  },
};

const antiEntropyCommand: Command = {
  name: "anti-entropy",
  usage: "[options]",
  summary:
    "Rounds until 95% and 100% of N nodes have an update spread by push, pull or push-pull anti-entropy alone, next to the log N predictions.",
  options: {
    ...COMMON,
    n: {
      type: "string",
      value: "LIST",
      help: "Fleet sizes (default 100,1000,10000)",
    },
    mode: {
      type: "string",
      value: "LIST",
      help: "Modes among push, pull, push-pull (default all three)",
    },
    processes: processesSpec,
  },
  async run(args) {
    const start = performance.now();
    const processes = processesOption(args);
    const result = await antiEntropyExperiment({
      sizes: listOption(args, "n", [100, 1000, 10_000], 2, 100_000),
      modes: choiceList<AntiEntropyMode>(args, "mode", [
        "push",
        "pull",
        "push-pull",
      ]),
      runs: intOption(args, "runs", 3, 1, 10_000),
      seed: seedOption(args),
    }, (jobs) => runJobs("antiEntropy", jobs, processes));
    return report(result, args, start);
  },
};

const rumorCommand: Command = {
  name: "rumor",
  usage: "[options]",
  summary:
    "Residue, traffic and delivery times of rumor mongering with share limit k, blind and feedback, next to the figures of Demers et al. (1987).",
  options: {
    ...COMMON,
    n: { type: "string", value: "N", help: "Nodes (default 1000)" },
    k: { type: "string", value: "LIST", help: "Share limits (default 1..5)" },
    variant: {
      type: "string",
      value: "LIST",
      help: "Variants among blind, feedback (default both)",
    },
    processes: processesSpec,
  },
  async run(args) {
    const start = performance.now();
    const processes = processesOption(args);
    const result = await rumorExperiment({
      n: intOption(args, "n", 1000, 2, 100_000),
      ks: listOption(args, "k", [1, 2, 3, 4, 5], 1, 100),
      runs: intOption(args, "runs", 50, 1, 10_000),
      seed: seedOption(args),
      variants: choiceList<RumorVariant>(args, "variant", [
        "blind",
        "feedback",
      ]),
    }, (jobs) => runJobs("rumor", jobs, processes));
    return report(result, args, start);
  },
};

const rumorAeCommand: Command = {
  name: "rumor-ae",
  usage: "[options]",
  summary:
    "Rumor mongering followed by periodic push-pull anti-entropy: rounds until anti-entropy reaches the nodes the rumor missed.",
  options: {
    ...COMMON,
    n: { type: "string", value: "N", help: "Nodes (default 1000)" },
    k: {
      type: "string",
      value: "LIST",
      help: "Blind share limits (default 1..3)",
    },
    "ae-every": {
      type: "string",
      value: "R",
      help:
        "Rounds between anti-entropy sessions (default 25, as 5000 ms / 200 ms in the lan preset)",
    },
  },
  run(args) {
    const start = performance.now();
    const result = rumorAeExperiment({
      n: intOption(args, "n", 1000, 2, 100_000),
      ks: listOption(args, "k", [1, 2, 3], 1, 100),
      aeEvery: intOption(args, "ae-every", 25, 1, 1000),
      runs: intOption(args, "runs", 10, 1, 10_000),
      seed: seedOption(args),
    });
    return report(result, args, start);
  },
};

const offlineCommand: Command = {
  name: "offline",
  usage: "[options]",
  summary:
    "Delivery when a fraction of nodes is offline at write time and restarts later: the rumor reaches the running nodes, anti-entropy the returning ones.",
  options: {
    ...COMMON,
    n: { type: "string", value: "N", help: "Nodes (default 1000)" },
    offline: {
      type: "string",
      value: "FRACTION",
      help: "Fraction of nodes offline at write time (default 0.1)",
    },
    "return-round": {
      type: "string",
      value: "R",
      help: "Round in which the offline nodes start again (default 40)",
    },
    k: {
      type: "string",
      value: "K",
      help: "Blind share limit of the rumor (default 4)",
    },
    "ae-every": {
      type: "string",
      value: "R",
      help: "Rounds between anti-entropy sessions (default 10)",
    },
  },
  async run(args) {
    const start = performance.now();
    const result = await offlineExperiment({
      n: intOption(args, "n", 1000, 2, 100_000),
      offline: fractionOption(args, "offline", 0.1),
      returnRound: intOption(args, "return-round", 40, 1, 1000),
      k: intOption(args, "k", 4, 1, 100),
      aeEvery: intOption(args, "ae-every", 10, 1, 1000),
      runs: intOption(args, "runs", 10, 1, 10_000),
      seed: seedOption(args),
    });
    return report(result, args, start);
  },
};

const SUBCOMMANDS = [
  sirCommand,
  antiEntropyCommand,
  rumorCommand,
  rumorAeCommand,
  offlineCommand,
];

/** The `simulate` command and its experiments. */
export const simulateCommand: Command = {
  name: "simulate",
  usage: "EXPERIMENT [options]",
  summary:
    "Run an epidemic experiment on the simulator, which drives real protocol nodes in one process on a simulated clock, and write its plot as SVG.",
  details: [
    "Experiments:",
    ...SUBCOMMANDS.map((command) =>
      `  ${command.name.padEnd(14)}${
        command.summary.split(": ")[0]!.split(", next")[0]
      }`
    ),
    "",
    "Run main.ts simulate EXPERIMENT --help for the options of one experiment.",
  ].join("\n"),
  options: {},
  subcommands: SUBCOMMANDS,
  run(args) {
    const [name] = args.positionals;
    if (name === undefined) {
      throw new UsageError(
        `Missing experiment: expected one of ${
          SUBCOMMANDS.map((command) => command.name).join(", ")
        }`,
      );
    }
    throw new UsageError(
      `Unknown experiment ${JSON.stringify(name)}: expected one of ${
        SUBCOMMANDS.map((command) => command.name).join(", ")
      }`,
    );
  },
};
