/**
 * Rumor mongering followed by anti-entropy: how long periodic push-pull
 * anti-entropy needs to reach the nodes that the rumor missed.
 *
 * Rumors spread with the blind variant and one push per round, and every
 * node runs one anti-entropy session each `aeEvery` rounds, all in the
 * same round. The defaults mirror the `lan` preset, whose anti-entropy
 * interval (5000 ms) is 25 gossip rounds (200 ms).
 *
 * @module
 */

import { streamSeed } from "../random.ts";
import { Simulator } from "../simulator.ts";
import type { Series } from "../svg.ts";
import { sirFinalSusceptible } from "../theory.ts";
import {
  DeliveryLog,
  type ExperimentResult,
  formatNumber,
  maximum,
  mean,
  paperModel,
  ROUND_MS,
  UPDATE_KEY,
} from "./common.ts";

/** Parameters of one rumor-then-anti-entropy run. */
export interface RumorAeRunParams {
  readonly n: number;
  readonly k: number;
  readonly aeEvery: number;
  readonly seed: number;
}

/** Outcome of one run. */
export interface RumorAeRun {
  /** Fraction of nodes that no rumor push reached. */
  readonly residue: number;
  /** Round in which the last rumor stopped. */
  readonly rumorEnd: number;
  /** Round after which every node had the update, `NaN` if none did. */
  readonly fullRound: number;
  /** Anti-entropy rounds every node ran until all nodes had the update. */
  readonly aeRounds: number;
  /** Fraction of nodes holding the update after each round. */
  readonly curve: number[];
}

const MAX_ROUNDS = 1000;

/** Spreads one update by rumor, then lets anti-entropy finish the job. */
export function runRumorAe(params: RumorAeRunParams): RumorAeRun {
  const { n, k, aeEvery } = params;
  const sim = new Simulator({
    nodes: n,
    seed: params.seed,
    settings: paperModel({
      rumorShareLimit: k,
      antiEntropyIntervalMs: aeEvery * ROUND_MS,
    }),
    roundMs: ROUND_MS,
  });
  const log = new DeliveryLog(sim);
  let byRumor = 0;
  sim.on((_node, event) => {
    const pushed = event.type === "change" && event.entry.key === UPDATE_KEY &&
      (event.source === "rumor" || event.source === "local");
    if (pushed) byRumor++;
  });
  sim.write(0, UPDATE_KEY, "true");
  const curve = [log.count / n];
  let rumorEnd = NaN;
  sim.runRounds(MAX_ROUNDS, () => {
    curve.push(log.count / n);
    const spreading = sim.nodes.some((node) => node.node.activeRumors > 0);
    if (Number.isNaN(rumorEnd) && !spreading) rumorEnd = sim.rounds;
    return !spreading && log.count === n;
  });
  const fullRound = log.count === n ? sim.rounds : NaN;
  // Anti-entropy runs in rounds aeEvery, 2 aeEvery, … for every node.
  const aeRounds = Math.floor(fullRound / aeEvery);
  return { residue: (n - byRumor) / n, rumorEnd, fullRound, aeRounds, curve };
}

/** Options of {@link rumorAeExperiment}. */
export interface RumorAeOptions {
  readonly n: number;
  readonly ks: readonly number[];
  readonly aeEvery: number;
  readonly runs: number;
  readonly seed: number;
}

/**
 * Returns the mean-field number of push-pull anti-entropy rounds that
 * take an uninformed fraction `residue` of `n` nodes below half a node.
 */
export function predictedAeRounds(residue: number, n: number): number {
  if (residue * n < 0.5) return 0;
  let u = residue;
  for (let round = 1; round <= 100; round++) {
    u = u * u * Math.exp(-(1 - u));
    if (u * n < 0.5) return round;
  }
  return Infinity;
}

/** Runs the experiment and builds its table and plot. */
export function rumorAeExperiment(options: RumorAeOptions): ExperimentResult {
  const { n, aeEvery, runs } = options;
  const rows: string[][] = [];
  const series: Series[] = [];
  const colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"];
  for (const [index, k] of options.ks.entries()) {
    const results: RumorAeRun[] = [];
    for (let run = 0; run < runs; run++) {
      results.push(
        runRumorAe({ n, k, aeEvery, seed: streamSeed(options.seed, run) }),
      );
    }
    const residue = mean(results.map((run) => run.residue));
    const aeRounds = results.map((run) => run.aeRounds);
    rows.push([
      String(k),
      formatNumber(residue),
      formatNumber(sirFinalSusceptible(k)),
      formatNumber(mean(results.map((run) => run.rumorEnd))),
      formatNumber(mean(results.map((run) => run.fullRound))),
      formatNumber(mean(aeRounds)),
      formatNumber(maximum(aeRounds)),
      String(predictedAeRounds(residue, n)),
    ]);
    const length = Math.max(...results.map((run) => run.curve.length));
    const points: [number, number][] = [];
    for (let round = 0; round < length; round++) {
      // A finished run stays at 1.
      points.push([round, mean(results.map((run) => run.curve[round] ?? 1))]);
    }
    series.push({
      name: `k = ${k}`,
      points,
      color: colors[index % colors.length],
    });
  }
  return {
    title:
      `Rumor, then push-pull anti-entropy every ${aeEvery} rounds, N = ${n}, ${runs} runs per row`,
    columns: [
      "k",
      "residue",
      "SIR",
      "rumor end",
      "all reached",
      "AE rounds",
      "AE max",
      "mf AE rounds",
    ],
    rows,
    plot: {
      title:
        `Nodes reached: rumor, then anti-entropy every ${aeEvery} rounds (N = ${n})`,
      xLabel: "round",
      yLabel: "fraction of nodes with the update",
      yMin: 0,
      yMax: 1,
      series,
    },
    plotFile: "rumor-ae.svg",
    notes: [
      "residue: fraction of nodes no rumor push reached (anti-entropy may run before the rumor stops); SIR: s = exp(-k (1 - s)).",
      "rumor end, all reached: mean round. AE rounds: anti-entropy rounds every node ran until all nodes had the update (mean and max).",
      "mf AE rounds: mean-field push-pull recurrence u' = u^2 e^-(1-u), started from the simulated residue. With k = 1 a blind rumor is a chain, one push per node, that runs until it meets an informed node.",
    ],
  };
}
