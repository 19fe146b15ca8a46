/**
 * Rumor mongering with a share limit k: residue, traffic and delivery
 * times for the blind and feedback variants, next to the published figures.
 *
 * Blind: a node stops after k pushes (`rumorShareLimit` = k). Feedback: a
 * node stops once k peers replied that they already had the update
 * (`feedbackLimit` = k). Both push to one random peer per round.
 *
 * @module
 */

import type { NetworkConditions } from "../network.ts";
import type { Series } from "../svg.ts";
import { streamSeed } from "../random.ts";
import { Simulator } from "../simulator.ts";
import {
  DEMERS_BLIND_COIN,
  DEMERS_FEEDBACK_COUNTER,
  DEMERS_SOURCE,
  pushResidue,
  sirFinalSusceptible,
} from "../theory.ts";
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

/** Stop rule of a rumor. */
export type RumorVariant = "blind" | "feedback";

/** Parameters of one rumor run. */
export interface RumorRunParams {
  readonly n: number;
  readonly k: number;
  readonly variant: RumorVariant;
  readonly seed: number;
  readonly network?: Partial<NetworkConditions>;
}

/** Outcome of one rumor run. */
export interface RumorRun {
  /** Fraction of nodes never reached. */
  readonly residue: number;
  /** Rumor pushes per node. */
  readonly traffic: number;
  /** Average delivery round over the nodes reached, origin excluded. */
  readonly tAve: number;
  /** Last delivery round. */
  readonly tLast: number;
  /** Simulator events handled. */
  readonly events: number;
}

/** Upper bound on rounds of one run; the rumor dies long before. */
const MAX_ROUNDS = 500;

/** Runs one rumor from node 0 until no node spreads it any more. */
export function runRumor(params: RumorRunParams): RumorRun {
  const { n, k, variant } = params;
  const settings = variant === "blind"
    ? paperModel({ rumorShareLimit: k })
    : paperModel({ feedbackLimit: k });
  const sim = new Simulator({
    nodes: n,
    seed: params.seed,
    settings,
    network: params.network,
    roundMs: ROUND_MS,
    contactsFor: "rumor_holders",
  });
  const log = new DeliveryLog(sim);
  sim.write(0, UPDATE_KEY, "true");
  sim.runRounds(
    MAX_ROUNDS,
    () => sim.nodes.every((node) => node.node.activeRumors === 0),
  );
  const rounds = log.rounds().filter((round) => round > 0);
  return {
    residue: (n - log.count) / n,
    traffic: sim.network.traffic.rumorEntries / n,
    tAve: mean(rounds),
    tLast: maximum(rounds),
    events: sim.events,
  };
}

/** Options of {@link rumorExperiment}. */
export interface RumorOptions {
  readonly n: number;
  readonly ks: readonly number[];
  readonly runs: number;
  readonly seed: number;
  readonly variants: readonly RumorVariant[];
  readonly network?: Partial<NetworkConditions>;
}

/** Runs a batch of rumor runs, in worker threads or in this thread. */
export type RumorRunner = (jobs: RumorRunParams[]) => Promise<RumorRun[]>;

/** Mean outcome of the runs of one variant and k. */
export interface RumorSummary {
  readonly variant: RumorVariant;
  readonly k: number;
  readonly residue: number;
  readonly traffic: number;
  readonly tAve: number;
  readonly tLast: number;
}

/** Returns the job list of a rumor experiment: every variant, k and run. */
export function rumorJobs(options: RumorOptions): RumorRunParams[] {
  const jobs: RumorRunParams[] = [];
  for (const variant of options.variants) {
    for (const k of options.ks) {
      for (let run = 0; run < options.runs; run++) {
        jobs.push({
          n: options.n,
          k,
          variant,
          seed: streamSeed(options.seed, run),
          network: options.network,
        });
      }
    }
  }
  return jobs;
}

/** Averages runs by variant and k, in the order of the jobs. */
export function summarizeRumor(
  jobs: readonly RumorRunParams[],
  runs: readonly RumorRun[],
): RumorSummary[] {
  const groups = new Map<string, { job: RumorRunParams; runs: RumorRun[] }>();
  for (const [index, job] of jobs.entries()) {
    const id = `${job.variant}/${job.k}`;
    const group = groups.get(id) ?? { job, runs: [] };
    group.runs.push(runs[index]!);
    groups.set(id, group);
  }
  return [...groups.values()].map(({ job, runs }) => ({
    variant: job.variant,
    k: job.k,
    residue: mean(runs.map((run) => run.residue)),
    traffic: mean(runs.map((run) => run.traffic)),
    tAve: mean(runs.map((run) => run.tAve)),
    tLast: mean(runs.map((run) => run.tLast)),
  }));
}

/**
 * Returns the residue the SIR final-size equation predicts: a blind node
 * makes k pushes, so R0 = k. A feedback node makes k unnecessary pushes
 * plus about one that informs, so R0 ≈ k + 1.
 */
export function predictedResidue(variant: RumorVariant, k: number): number {
  return sirFinalSusceptible(variant === "blind" ? k : k + 1);
}

/** Runs the rumor experiment and builds its table and plot. */
export async function rumorExperiment(
  options: RumorOptions,
  runner: RumorRunner,
): Promise<ExperimentResult> {
  const jobs = rumorJobs(options);
  const summaries = summarizeRumor(jobs, await runner(jobs));
  const rows = summaries.map((row) => {
    const published = publishedRow(row.variant, row.k);
    return [
      row.variant,
      String(row.k),
      formatNumber(row.residue),
      formatNumber(predictedResidue(row.variant, row.k)),
      formatNumber(pushResidue(row.traffic)),
      formatNumber(published?.residue ?? NaN),
      formatNumber(row.traffic),
      formatNumber(published?.traffic ?? NaN),
      formatNumber(row.tAve),
      formatNumber(row.tLast),
      published ? `${published.tAve} / ${published.tLast}` : "-",
    ];
  });
  const series: Series[] = options.variants.flatMap((variant, index) => {
    const mine = summaries.filter((row) => row.variant === variant);
    const color = index === 0 ? "#0072B2" : "#D55E00";
    return [
      {
        name: `${variant}: simulated`,
        points: mine.map((row) =>
          [row.k, Math.max(row.residue, 1e-5)] as const
        ),
        color,
      },
      {
        name: `${variant}: SIR final size`,
        points: mine.map((row) =>
          [row.k, predictedResidue(variant, row.k)] as const
        ),
        style: "dashed" as const,
        color,
      },
    ];
  });
  series.push({
    name: "Demers Table 1 (feedback)",
    points: DEMERS_FEEDBACK_COUNTER.map((row) => [row.k, row.residue] as const),
    style: "markers" as const,
    color: "#009E73",
  });
  series.push({
    name: "Demers Table 2 (blind coin)",
    points: DEMERS_BLIND_COIN.map((row) => [row.k, row.residue] as const),
    style: "markers" as const,
    color: "#CC79A7",
  });
  return {
    title: `Rumor mongering, N = ${options.n}, ${options.runs} runs per row`,
    columns: [
      "variant",
      "k",
      "residue",
      "SIR",
      "e^-m",
      "paper",
      "traffic m",
      "paper m",
      "t_ave",
      "t_last",
      "paper t_ave/t_last",
    ],
    rows,
    plot: {
      title: `Residue by share limit k (N = ${options.n})`,
      xLabel: "k",
      yLabel: "residue (fraction never reached)",
      yLog: true,
      series,
    },
    plotFile: "rumor.svg",
    notes: [
      "residue: simulated mean. SIR: root of s = exp(-R0 (1 - s)) with R0 = k (blind) or k + 1 (feedback). e^-m: push relation s = e^-m at the simulated traffic.",
      "traffic m: rumor pushes per node. t_ave, t_last: delivery round, origin excluded.",
      `paper: feedback rows from Table 1 (feedback, counter); blind rows from Table 2, which uses a coin (stop with probability 1/k) where Grapevine counts k pushes. Source: ${DEMERS_SOURCE}.`,
    ],
  };
}

function publishedRow(variant: RumorVariant, k: number) {
  const table = variant === "feedback"
    ? DEMERS_FEEDBACK_COUNTER
    : DEMERS_BLIND_COIN;
  return table.find((row) => row.k === k);
}
