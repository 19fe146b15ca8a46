/**
 * Delivery in a fleet where some nodes are offline when an update is
 * written: the rumor reaches the running nodes, and the others get the
 * update by anti-entropy after they start again.
 *
 * An offline node is stopped: links to it fail, and it restarts from its
 * in-memory store as a new GossipNode, as a restarted process would. No
 * node keeps updates for another (there is no hinted handoff), so "store
 * and forward" is every running replica holding the update until
 * anti-entropy copies it.
 *
 * @module
 */

import { sampleDistinct, seededRandom, streamSeed } from "../random.ts";
import { Simulator } from "../simulator.ts";
import type { Series } from "../svg.ts";
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
import { predictedAeRounds } from "./rumor_ae.ts";

/** Parameters of one offline run. */
export interface OfflineRunParams {
  readonly n: number;
  /** Fraction of nodes offline from before the write until `returnRound`. */
  readonly offline: number;
  readonly returnRound: number;
  readonly k: number;
  readonly aeEvery: number;
  readonly seed: number;
}

/** Outcome of one offline run. */
export interface OfflineRun {
  /** Fraction of running nodes that had the update when the others returned. */
  readonly onlineReached: number;
  /** Rounds from the return until each returned node had the update. */
  readonly delays: number[];
  /** Rounds from the return until every node had the update, `NaN` if not. */
  readonly allAfter: number;
  /** Fraction of all nodes holding the update after each round. */
  readonly curve: number[];
}

const MAX_ROUNDS = 2000;

/** Runs one update through a fleet with stopped nodes that come back. */
export async function runOffline(
  params: OfflineRunParams,
): Promise<OfflineRun> {
  const { n, returnRound, aeEvery } = params;
  const sim = new Simulator({
    nodes: n,
    seed: params.seed,
    settings: paperModel({
      rumorShareLimit: params.k,
      antiEntropyIntervalMs: aeEvery * ROUND_MS,
    }),
    roundMs: ROUND_MS,
  });
  const log = new DeliveryLog(sim);
  const stopped = sampleDistinct(
    seededRandom(streamSeed(params.seed, -3)),
    n,
    Math.round(params.offline * n),
    0,
  );
  for (const index of stopped) sim.stopNode(index);
  sim.write(0, UPDATE_KEY, "true");
  const curve = [log.count / n];
  sim.runRounds(returnRound, () => {
    curve.push(log.count / n);
    return false;
  });
  const onlineReached = log.count / (n - stopped.length);
  for (const index of stopped) await sim.startNode(index);
  sim.runRounds(MAX_ROUNDS - returnRound, () => {
    curve.push(log.count / n);
    return log.count === n;
  });
  const delays = stopped
    .map((index) => log.roundOf(index) - returnRound)
    .filter((delay) => !Number.isNaN(delay));
  return {
    onlineReached,
    delays,
    allAfter: log.count === n ? sim.rounds - returnRound : NaN,
    curve,
  };
}

/** Options of {@link offlineExperiment}. */
export interface OfflineOptions {
  readonly n: number;
  readonly offline: number;
  readonly returnRound: number;
  readonly k: number;
  readonly aeEvery: number;
  readonly runs: number;
  readonly seed: number;
}

/** Runs the offline experiment and builds its table and plot. */
export async function offlineExperiment(
  options: OfflineOptions,
): Promise<ExperimentResult> {
  const results: OfflineRun[] = [];
  for (let run = 0; run < options.runs; run++) {
    results.push(
      await runOffline({ ...options, seed: streamSeed(options.seed, run) }),
    );
  }
  const delays = results.flatMap((run) => run.delays);
  const allAfter = results.map((run) => run.allAfter);
  const rows = [[
    formatNumber(options.offline),
    formatNumber(mean(results.map((run) => run.onlineReached))),
    formatNumber(mean(delays)),
    formatNumber(maximum(delays)),
    formatNumber(mean(allAfter)),
    formatNumber(maximum(allAfter)),
    String(predictedAeRounds(options.offline, options.n) * options.aeEvery),
  ]];
  const length = Math.max(...results.map((run) => run.curve.length));
  const points: [number, number][] = [];
  for (let round = 0; round < length; round++) {
    points.push([round, mean(results.map((run) => run.curve[round] ?? 1))]);
  }
  const series: Series[] = [
    { name: "all nodes", points, color: "#0072B2" },
    {
      name: "nodes return",
      points: [[options.returnRound, 0], [options.returnRound, 1]],
      style: "dashed",
      color: "#D55E00",
    },
  ];
  return {
    title: `${
      formatNumber(options.offline * 100)
    }% of N = ${options.n} offline until round ${options.returnRound}; rumor k = ${options.k}, anti-entropy every ${options.aeEvery} rounds; ${options.runs} runs`,
    columns: [
      "offline",
      "online reached",
      "delay mean",
      "delay max",
      "all after",
      "all after max",
      "mf rounds",
    ],
    rows,
    plot: {
      title: `Update delivery with ${
        formatNumber(options.offline * 100)
      }% of nodes offline (N = ${options.n})`,
      xLabel: "round",
      yLabel: "fraction of nodes with the update",
      yMin: 0,
      yMax: 1,
      series,
    },
    plotFile: "offline.svg",
    notes: [
      "online reached: fraction of running nodes with the update when the others returned.",
      "delay: rounds from the return until a returned node had the update (mean and max over nodes and runs). all after: rounds until every node had it.",
      "mf rounds: mean-field push-pull rounds from an uninformed fraction equal to the offline fraction, times the anti-entropy interval; it ignores the wait for the first session.",
    ],
  };
}
