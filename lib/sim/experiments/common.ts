/**
 * Pieces shared by the experiments: the settings of the paper model, a log
 * of when each node received the update, and the result format.
 *
 * @module
 */

import type { Settings } from "../../config.ts";
import type { NodeState } from "../../protocol/node.ts";
import { SIM_EPOCH_MS, type Simulator } from "../simulator.ts";
import type { Plot } from "../svg.ts";

/** Key of the update every experiment spreads. */
export const UPDATE_KEY = "feature/flag";

/** Length of one simulated round in milliseconds. */
export const ROUND_MS = 1000;

/** An interval long enough to switch a periodic task off. */
export const NEVER_MS = 24 * 3600 * 1000;

/**
 * Settings of the synchronous model of the epidemic literature: one push
 * per round, rumors first pushed in the round after they arrive, and
 * anti-entropy off unless an experiment turns it on.
 */
export function paperModel(
  overrides: Partial<Settings> = {},
): Partial<Settings> {
  return {
    fanout: 1,
    rumorFirstPush: "next_round",
    rumorShareLimit: 1_000_000,
    feedbackLimit: 1000,
    antiEntropyIntervalMs: NEVER_MS,
    antiEntropyJitter: 0,
    // The papers' anti-entropy does not turn repairs into new rumors.
    antiEntropyRumorLimit: 0,
    ...overrides,
  };
}

/**
 * Returns the state of a node that has the update but spreads no rumor,
 * as if it had restarted after taking the write. Only anti-entropy moves
 * the update then.
 */
export function updateOnlyState(): NodeState {
  return {
    entries: [{
      key: UPDATE_KEY,
      value: "true",
      version: [SIM_EPOCH_MS, 0, "n0"],
    }],
    rumors: [],
    clock: undefined,
  };
}

/** When each node first applied the update. */
export class DeliveryLog {
  /** Delivery time per node index in milliseconds, `NaN` before delivery. */
  readonly deliveredMs: Float64Array;
  /** Nodes that have the update. */
  count = 0;
  readonly #startMs: number;
  readonly #roundMs: number;

  constructor(sim: Simulator, key = UPDATE_KEY) {
    this.deliveredMs = new Float64Array(sim.nodes.length).fill(NaN);
    this.#startMs = sim.nowMs;
    this.#roundMs = sim.roundMs;
    sim.on((node, event) => {
      if (event.type !== "change" || event.entry.key !== key) return;
      if (!Number.isNaN(this.deliveredMs[node.index]!)) return;
      this.deliveredMs[node.index] = sim.nowMs;
      this.count++;
    });
  }

  /** Marks a node as holding the update from the start. */
  markStart(index: number): void {
    if (!Number.isNaN(this.deliveredMs[index]!)) return;
    this.deliveredMs[index] = this.#startMs;
    this.count++;
  }

  /** Returns the round in which a node got the update, or `NaN`. */
  roundOf(index: number): number {
    const ms = this.deliveredMs[index]!;
    return Math.floor((ms - this.#startMs) / this.#roundMs);
  }

  /** Rounds of every node that got the update. */
  rounds(): number[] {
    const rounds: number[] = [];
    for (let index = 0; index < this.deliveredMs.length; index++) {
      const round = this.roundOf(index);
      if (!Number.isNaN(round)) rounds.push(round);
    }
    return rounds;
  }
}

/** A table for the terminal, a plot and remarks. */
export interface ExperimentResult {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly plot: Plot;
  /** File name of the plot, such as `rumor.svg`. */
  readonly plotFile: string;
  readonly notes: readonly string[];
}

/** Returns the arithmetic mean; `NaN` for no values. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Returns the largest value; `NaN` for no values. */
export function maximum(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.max(...values);
}

/** Formats a number with `digits` significant digits, or `-` for `NaN`. */
export function formatNumber(value: number, digits = 3): string {
  if (Number.isNaN(value)) return "-";
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  if (Math.abs(value) < 1e-3) return value.toExponential(1);
  return Number(value.toPrecision(digits)).toString();
}
