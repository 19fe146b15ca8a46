/**
 * Push, pull and push-pull anti-entropy: rounds until 95% and 100% of N
 * nodes hold an update that starts at one node, next to the log N
 * predictions.
 *
 * The update is restored at node 0 without a rumor, so only anti-entropy
 * moves it. Every node starts one session per round with one random peer.
 *
 * @module
 */

import type { NetworkConditions } from "../network.ts";
import type { Series } from "../svg.ts";
import { streamSeed } from "../random.ts";
import { Simulator } from "../simulator.ts";
import {
  type AntiEntropyMode,
  asymptoticRounds,
  meanFieldRounds,
} from "../theory.ts";
import {
  DeliveryLog,
  type ExperimentResult,
  formatNumber,
  maximum,
  mean,
  paperModel,
  ROUND_MS,
  updateOnlyState,
} from "./common.ts";

/** Parameters of one anti-entropy run. */
export interface AntiEntropyRunParams {
  readonly n: number;
  readonly mode: AntiEntropyMode;
  readonly seed: number;
  readonly network?: Partial<NetworkConditions>;
}

/** Outcome of one anti-entropy run. */
export interface AntiEntropyRun {
  /** First round after which 95% of nodes had the update. */
  readonly rounds95: number;
  /** First round after which every node had it, `NaN` if none did. */
  readonly rounds100: number;
  /** Fraction of nodes holding the update after each round; index 0 is the start. */
  readonly curve: number[];
  readonly events: number;
}

/** Upper bound on rounds of one run. */
const MAX_ROUNDS = 200;

/** Spreads one update by anti-entropy alone until every node has it. */
export function runAntiEntropy(params: AntiEntropyRunParams): AntiEntropyRun {
  const { n, mode } = params;
  const sim = new Simulator({
    nodes: n,
    seed: params.seed,
    settings: paperModel({
      antiEntropyIntervalMs: ROUND_MS,
      antiEntropyMode: mode,
    }),
    network: params.network,
    roundMs: ROUND_MS,
    state: (index) => index === 0 ? updateOnlyState() : undefined,
  });
  const log = new DeliveryLog(sim);
  log.markStart(0);
  const curve = [log.count / n];
  let rounds95 = NaN;
  sim.runRounds(MAX_ROUNDS, () => {
    curve.push(log.count / n);
    if (Number.isNaN(rounds95) && log.count >= 0.95 * n) rounds95 = sim.rounds;
    return log.count === n;
  });
  return {
    rounds95,
    rounds100: log.count === n ? sim.rounds : NaN,
    curve,
    events: sim.events,
  };
}

/** Options of {@link antiEntropyExperiment}. */
export interface AntiEntropyOptions {
  readonly sizes: readonly number[];
  readonly modes: readonly AntiEntropyMode[];
  readonly runs: number;
  readonly seed: number;
  readonly network?: Partial<NetworkConditions>;
}

/** Runs a batch of anti-entropy runs, in worker threads or in this thread. */
export type AntiEntropyRunner = (
  jobs: AntiEntropyRunParams[],
) => Promise<AntiEntropyRun[]>;

/** Runs the anti-entropy experiment and builds its table and plot. */
export async function antiEntropyExperiment(
  options: AntiEntropyOptions,
  runner: AntiEntropyRunner,
): Promise<ExperimentResult> {
  const jobs: AntiEntropyRunParams[] = [];
  for (const mode of options.modes) {
    for (const n of options.sizes) {
      for (let run = 0; run < options.runs; run++) {
        jobs.push({
          n,
          mode,
          seed: streamSeed(options.seed, run),
          network: options.network,
        });
      }
    }
  }
  const results = await runner(jobs);
  const rows: string[][] = [];
  const series: Series[] = [];
  const colors = ["#0072B2", "#D55E00", "#009E73"];
  for (const [index, mode] of options.modes.entries()) {
    const simulated: [number, number][] = [];
    for (const n of options.sizes) {
      const runs = results.filter((_, job) =>
        jobs[job]!.mode === mode && jobs[job]!.n === n
      );
      const full = runs.map((run) => run.rounds100);
      const mean100 = mean(full);
      simulated.push([n, mean100]);
      rows.push([
        mode,
        String(n),
        formatNumber(mean(runs.map((run) => run.rounds95))),
        String(meanFieldRounds(mode, n, 0.95)),
        formatNumber(mean100),
        formatNumber(maximum(full)),
        String(meanFieldRounds(mode, n, 1)),
        formatNumber(asymptoticRounds(mode, n)),
      ]);
    }
    const color = colors[index % colors.length];
    series.push(
      { name: `${mode}: simulated`, points: simulated, color },
      {
        name: `${mode}: mean field`,
        points: options.sizes.map((n) =>
          [n, meanFieldRounds(mode, n, 1)] as const
        ),
        style: "dotted" as const,
        color,
      },
      {
        name: `${mode}: log formula`,
        points: options.sizes.map((n) =>
          [n, asymptoticRounds(mode, n)] as const
        ),
        style: "dashed" as const,
        color,
      },
    );
  }
  return {
    title: `Anti-entropy, ${options.runs} runs per row`,
    columns: [
      "mode",
      "N",
      "95%",
      "mf 95%",
      "100%",
      "100% max",
      "mf 100%",
      "log formula",
    ],
    rows,
    plot: {
      title: "Rounds until every node has the update",
      xLabel: "N (nodes)",
      yLabel: "rounds",
      xLog: true,
      yMin: 0,
      series,
    },
    plotFile: "anti-entropy.svg",
    notes: [
      "95%, 100%: mean rounds until 95% and all of N hold the update; 100% max: slowest run.",
      "mf: mean-field recurrence (push u' = u e^-(1-u), pull u' = u^2, push-pull u' = u^2 e^-(1-u)).",
      "log formula: log2 N + ln N (push), log2 N (pull), log3 N (push-pull), leading terms only.",
    ],
  };
}
