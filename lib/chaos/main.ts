/**
 * `deno task chaos` runs one chaos run of real instances behind the fault
 * proxy and prints a report. It exits 1 when a write was lost, a deleted
 * key came back or the fleet did not converge.
 *
 * ```sh
 * deno task chaos                          # six instances, one minute, random seed
 * deno task chaos --seed 42 --duration 300 # replay seed 42 for five minutes
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { defaultChaosOptions, formatReport, passed, runChaos } from "./run.ts";

const HELP = `Usage: deno task chaos [options]

Starts a fleet of real instances on 127.0.0.1 behind a fault proxy, writes
and deletes keys while it injects partitions, cut and slow links, dropped
traffic and SIGKILLs, then heals everything and checks that every instance
converged and kept every acknowledged write and delete.

Options:
  --seed N             seed of every random choice (default: random, printed)
  --duration S         seconds of faults and writes (default 60)
  --instances N        instances in the fleet (default 6)
  --interval-ms MS     anti-entropy interval of the instances (default 1000)
  --writers N          concurrent clients (default 4)
  --keys N             distinct keys written (default 200)
  --fault-gap-ms MS    mean pause between network faults (default 1500)
  --kill-gap-ms MS     mean pause between SIGKILLs, 0 for none (default 6000)
  --json               print the report as JSON too
  -h, --help           show this help`;

function positive(name: string, text: string | undefined, fallback: number) {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    console.error(
      `Invalid --${name}: ${JSON.stringify(text)} is not a non-negative number`,
    );
    Deno.exit(2);
  }
  return value;
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        seed: { type: "string" },
        duration: { type: "string" },
        instances: { type: "string" },
        "interval-ms": { type: "string" },
        writers: { type: "string" },
        keys: { type: "string" },
        "fault-gap-ms": { type: "string" },
        "kill-gap-ms": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP}`);
    Deno.exit(2);
  }
  const values = parsed.values;
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const defaults = defaultChaosOptions();
  const size = positive("instances", values.instances, defaults.size);
  if (size < 2) {
    console.error("Invalid --instances: a fleet needs at least 2 instances");
    Deno.exit(2);
  }
  const options = {
    ...defaults,
    seed: Math.floor(positive("seed", values.seed, defaults.seed)),
    durationMs: positive("duration", values.duration, 60) * 1000,
    size: Math.floor(size),
    antiEntropyIntervalMs: positive(
      "interval-ms",
      values["interval-ms"],
      defaults.antiEntropyIntervalMs,
    ),
    writers: Math.floor(positive("writers", values.writers, defaults.writers)),
    keys: Math.max(1, Math.floor(positive("keys", values.keys, defaults.keys))),
    faultGapMs: positive(
      "fault-gap-ms",
      values["fault-gap-ms"],
      defaults.faultGapMs,
    ),
    killGapMs: positive(
      "kill-gap-ms",
      values["kill-gap-ms"],
      defaults.killGapMs,
    ),
  };
  const report = await runChaos(options);
  console.log(`\n${formatReport(report)}`);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  Deno.exit(passed(report) ? 0 : 1);
}
