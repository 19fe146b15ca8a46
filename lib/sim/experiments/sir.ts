/**
 * Susceptible, infective and removed fractions over time for one rumor,
 * next to the SIR differential equations with matching β and γ.
 *
 * The rumor uses the blind variant: each infective node pushes to `fanout`
 * random peers per round and stops after k pushes. So β = fanout contacts
 * per round, and a node stays infective k / fanout rounds, which gives
 * γ = fanout / k. The simulated infective period is fixed where the
 * equations assume an exponential one, so the curves differ in shape, but
 * the final size depends only on R0 = β/γ = k.
 *
 * @module
 */

import { streamSeed } from "../random.ts";
import { Simulator } from "../simulator.ts";
import type { Series } from "../svg.ts";
import { sirFinalSusceptible, solveSir } from "../theory.ts";
import {
  DeliveryLog,
  type ExperimentResult,
  formatNumber,
  mean,
  paperModel,
  ROUND_MS,
  UPDATE_KEY,
} from "./common.ts";

/** Parameters of one SIR run. */
export interface SirRunParams {
  readonly n: number;
  readonly k: number;
  readonly fanout: number;
  readonly rounds: number;
  readonly seed: number;
}

/** Fractions after each round; index 0 is the start. */
export interface SirRun {
  readonly s: number[];
  readonly i: number[];
  readonly r: number[];
}

/** Spreads one blind rumor and samples S, I and R after every round. */
export function runSir(params: SirRunParams): SirRun {
  const { n, k, fanout, rounds } = params;
  const sim = new Simulator({
    nodes: n,
    seed: params.seed,
    settings: paperModel({ fanout, rumorShareLimit: k }),
    roundMs: ROUND_MS,
    contacts: fanout,
    contactsFor: "rumor_holders",
  });
  const log = new DeliveryLog(sim);
  sim.write(0, UPDATE_KEY, "true");
  const run: SirRun = { s: [], i: [], r: [] };
  const sample = () => {
    let infective = 0;
    for (const node of sim.nodes) {
      if (node.node.activeRumors > 0) infective++;
    }
    run.s.push((n - log.count) / n);
    run.i.push(infective / n);
    run.r.push((log.count - infective) / n);
  };
  sample();
  for (let round = 0; round < rounds; round++) {
    sim.runRound();
    sample();
  }
  return run;
}

/** Options of {@link sirExperiment}. */
export interface SirOptions {
  readonly n: number;
  readonly k: number;
  readonly fanout: number;
  readonly rounds: number;
  readonly runs: number;
  readonly seed: number;
}

/** Runs the SIR experiment and builds its table and plot. */
export function sirExperiment(options: SirOptions): ExperimentResult {
  const { n, k, fanout, rounds, runs } = options;
  const results: SirRun[] = [];
  for (let run = 0; run < runs; run++) {
    results.push(
      runSir({ n, k, fanout, rounds, seed: streamSeed(options.seed, run) }),
    );
  }
  const average = (pick: (run: SirRun) => number[], round: number) =>
    mean(results.map((run) => pick(run)[round]!));
  const beta = fanout;
  const gamma = fanout / k;
  const ode = solveSir({ beta, gamma, i0: 1 / n, until: rounds });
  const rows: string[][] = [];
  const simulated = {
    s: [] as [number, number][],
    i: [] as [number, number][],
    r: [] as [number, number][],
  };
  for (let round = 0; round <= rounds; round++) {
    const s = average((run) => run.s, round);
    const i = average((run) => run.i, round);
    const r = average((run) => run.r, round);
    simulated.s.push([round, s]);
    simulated.i.push([round, i]);
    simulated.r.push([round, r]);
    const point = ode[round]!;
    rows.push([
      String(round),
      formatNumber(s),
      formatNumber(point.s),
      formatNumber(i),
      formatNumber(point.i),
      formatNumber(r),
      formatNumber(point.r),
    ]);
  }
  const colors = { s: "#0072B2", i: "#D55E00", r: "#009E73" };
  const series: Series[] = [];
  for (const part of ["s", "i", "r"] as const) {
    const label = part.toUpperCase();
    series.push(
      {
        name: `${label} simulated`,
        points: simulated[part],
        color: colors[part],
      },
      {
        name: `${label} SIR equations`,
        points: ode.map((point) => [point.t, point[part]] as const),
        style: "dashed",
        color: colors[part],
      },
    );
  }
  return {
    title:
      `SIR, N = ${n}, blind rumor with k = ${k}, fanout ${fanout}, mean of ${runs} runs`,
    columns: ["round", "S sim", "S ode", "I sim", "I ode", "R sim", "R ode"],
    rows,
    plot: {
      title: `Rumor as an SIR epidemic (N = ${n}, k = ${k}, fanout ${fanout})`,
      xLabel: "round",
      yLabel: "fraction of nodes",
      yMin: 0,
      yMax: 1,
      series,
    },
    plotFile: "sir.svg",
    notes: [
      `β = ${beta} contacts per round, γ = fanout / k = ${
        formatNumber(gamma)
      } per round, R0 = ${k}.`,
      `Final susceptible fraction from s = exp(-R0 (1 - s)): ${
        formatNumber(sirFinalSusceptible(k))
      }; simulated: ${formatNumber(average((run) => run.s, rounds))}.`,
      "A simulated node is infective for exactly k / fanout rounds, where the equations assume an exponential period, so the simulated I curve rises and falls more steeply.",
    ],
  };
}
