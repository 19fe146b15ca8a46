/**
 * The theory that the experiments are compared with: the SIR differential
 * equations, mean-field recurrences and asymptotic round counts for
 * anti-entropy, and published rumor-mongering figures.
 *
 * @module
 */

/** Fractions of susceptible, infective and removed nodes at a time. */
export interface SirPoint {
  /** Time in rounds. */
  readonly t: number;
  readonly s: number;
  readonly i: number;
  readonly r: number;
}

/** Parameters of the SIR equations, with time in rounds. */
export interface SirParameters {
  /** Contacts per infective node per round that pass the update on. */
  readonly beta: number;
  /** Rate per round at which an infective node stops spreading. */
  readonly gamma: number;
  /** Infective fraction at t = 0; the rest is susceptible. */
  readonly i0: number;
  /** Last time to solve for, in rounds. */
  readonly until: number;
  /** Integration step in rounds (default 0.01). */
  readonly step?: number;
}

/**
 * Solves dS/dt = -βSI/N, dI/dt = βSI/N - γI, dR/dt = γI in fractions of N
 * with the classic fourth-order Runge–Kutta method. Returns one point per
 * whole round.
 */
export function solveSir(params: SirParameters): SirPoint[] {
  const { beta, gamma, i0, until } = params;
  const step = params.step ?? 0.01;
  const derivative = (s: number, i: number) => {
    const infections = beta * s * i;
    return [-infections, infections - gamma * i] as const;
  };
  let s = 1 - i0;
  let i = i0;
  const points: SirPoint[] = [{ t: 0, s, i, r: 1 - s - i }];
  const stepsPerRound = Math.round(1 / step);
  for (let round = 1; round <= until; round++) {
    for (let k = 0; k < stepsPerRound; k++) {
      const [ds1, di1] = derivative(s, i);
      const [ds2, di2] = derivative(s + ds1 * step / 2, i + di1 * step / 2);
      const [ds3, di3] = derivative(s + ds2 * step / 2, i + di2 * step / 2);
      const [ds4, di4] = derivative(s + ds3 * step, i + di3 * step);
      s += step / 6 * (ds1 + 2 * ds2 + 2 * ds3 + ds4);
      i += step / 6 * (di1 + 2 * di2 + 2 * di3 + di4);
    }
    points.push({ t: round, s, i, r: 1 - s - i });
  }
  return points;
}

/**
 * Returns the susceptible fraction left when an SIR epidemic with basic
 * reproduction number `r0` = β/γ dies out: the root below 1 of
 * s = exp(-r0 (1 - s)). It is 1 when r0 ≤ 1.
 */
export function sirFinalSusceptible(r0: number): number {
  if (r0 <= 1) return 1;
  // Fixed-point iteration from 0 converges to the root below 1, because
  // the map is increasing and its slope there is r0·s < 1.
  let s = 0;
  for (let iteration = 0; iteration < 10_000; iteration++) {
    const next = Math.exp(-r0 * (1 - s));
    if (Math.abs(next - s) < 1e-15) return next;
    s = next;
  }
  return s;
}

/** Anti-entropy direction, as in the `antiEntropyMode` setting. */
export type AntiEntropyMode = "push" | "pull" | "push-pull";

/**
 * Returns the expected uninformed fraction after each anti-entropy round,
 * starting from one informed node of `n`, when every node contacts one
 * uniformly random node per round. Mean-field recurrences, derived here:
 * an uninformed node is missed by all n(1 - u) pushes with probability
 * about e^-(1-u), and its own pull fails with probability u, so
 * push: u' = u·e^-(1-u), pull: u' = u², push-pull: u' = u²·e^-(1-u).
 * Index 0 is the start.
 */
export function antiEntropyCurve(
  mode: AntiEntropyMode,
  n: number,
  rounds: number,
): number[] {
  let u = 1 - 1 / n;
  const curve = [u];
  for (let round = 1; round <= rounds; round++) {
    const missedByPushes = Math.exp(-(1 - u));
    if (mode === "push") u = u * missedByPushes;
    else if (mode === "pull") u = u * u;
    else u = u * u * missedByPushes;
    curve.push(u);
  }
  return curve;
}

/**
 * Returns the first round after which the mean-field curve has informed
 * `coverage` of the nodes. Full coverage means fewer than half a node is
 * expected to be uninformed.
 */
export function meanFieldRounds(
  mode: AntiEntropyMode,
  n: number,
  coverage: number,
): number {
  const limit = coverage >= 1 ? 0.5 / n : 1 - coverage;
  const curve = antiEntropyCurve(mode, n, 200);
  const round = curve.findIndex((u) => u <= limit);
  return round < 0 ? Infinity : round;
}

/**
 * Returns the leading terms of the expected rounds until every node of `n`
 * is informed: log2 n + ln n for push, log2 n for pull and log3 n for
 * push-pull. These are the complete-graph limits (a → ∞) of the formulas
 * in "Pull and Push&Pull in Random Evolving Graphs" (2019), which cites
 * Doerr and Kostrygin for push. Lower-order terms, O(1) for push and
 * growing like ln ln n for the others, are left out.
 */
export function asymptoticRounds(mode: AntiEntropyMode, n: number): number {
  switch (mode) {
    case "push":
      return Math.log2(n) + Math.log(n);
    case "pull":
      return Math.log2(n);
    case "push-pull":
      return Math.log(n) / Math.log(3);
  }
}

/** One row of a published rumor-mongering table. */
export interface PublishedRumorRow {
  readonly k: number;
  /** Fraction of nodes never reached. */
  readonly residue: number;
  /** Update messages per node. */
  readonly traffic: number;
  /** Average delivery time in rounds. */
  readonly tAve: number;
  /** Last delivery time in rounds. */
  readonly tLast: number;
}

/** Source of the published rumor figures. */
export const DEMERS_SOURCE =
  'Demers et al., "Epidemic Algorithms for Replicated Database Maintenance", PODC 1987; tables as reprinted in Xerox PARC report CSL-89-1 (1989), p. 10';

/** Table 1 of {@link DEMERS_SOURCE}: push, feedback, counter, 1000 sites. */
export const DEMERS_FEEDBACK_COUNTER: readonly PublishedRumorRow[] = [
  { k: 1, residue: 0.18, traffic: 1.7, tAve: 11.0, tLast: 16.8 },
  { k: 2, residue: 0.037, traffic: 3.3, tAve: 12.1, tLast: 16.9 },
  { k: 3, residue: 0.011, traffic: 4.5, tAve: 12.5, tLast: 17.4 },
  { k: 4, residue: 0.0036, traffic: 5.6, tAve: 12.7, tLast: 17.5 },
  { k: 5, residue: 0.0012, traffic: 6.7, tAve: 12.8, tLast: 17.7 },
];

/** Table 2 of {@link DEMERS_SOURCE}: push, blind, coin, 1000 sites. */
export const DEMERS_BLIND_COIN: readonly PublishedRumorRow[] = [
  { k: 1, residue: 0.96, traffic: 0.04, tAve: 19, tLast: 38 },
  { k: 2, residue: 0.20, traffic: 1.6, tAve: 17, tLast: 33 },
  { k: 3, residue: 0.060, traffic: 2.8, tAve: 15, tLast: 32 },
  { k: 4, residue: 0.021, traffic: 3.9, tAve: 14.1, tLast: 32 },
  { k: 5, residue: 0.008, traffic: 4.9, tAve: 13.8, tLast: 32 },
];

/**
 * Returns the residue that push rumor mongering leaves for a traffic of
 * `traffic` messages per node: s = e^-m, the relation that
 * {@link DEMERS_SOURCE} gives for push rumor mongering.
 */
export function pushResidue(traffic: number): number {
  return Math.exp(-traffic);
}
