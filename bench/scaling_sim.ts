/**
 * Simulated scaling of rumor spreading to fleets that one machine cannot
 * run as processes: the real protocol core in the discrete-event simulator
 * (lib/sim), one write, anti-entropy off, until every node has the update
 * or the rumors die out.
 *
 * The simulator links each node to random peers each round (the contact
 * model of the epidemic literature) instead of keeping long-lived links, so
 * it runs `random` dissemination: there is no stable tree to prune. The
 * figures are in gossip rounds and frames, not milliseconds.
 *
 * @module
 */

import { Simulator } from "../lib/sim/simulator.ts";
import {
  DeliveryLog,
  ROUND_MS,
  UPDATE_KEY,
} from "../lib/sim/experiments/common.ts";

/** One simulated fleet size. */
export interface ScalingRow {
  readonly nodes: number;
  /** Random peers each node links to per round. */
  readonly contacts: number;
  /** Rounds until every node had the update; NaN if some never did. */
  readonly roundsToAll: number;
  /** Rounds until 99 % of the nodes had the update. */
  readonly rounds99: number;
  /** Nodes that never got the update. */
  readonly missed: number;
  /** Rumor entries received per node for the one update. */
  readonly rumorsPerNode: number;
  /** Seconds the simulation took on this machine. */
  readonly seconds: number;
}

/** Simulates one write in a fleet of `nodes`. */
export function simulateScaling(nodes: number, seed = 1): ScalingRow {
  const started = performance.now();
  // An instance keeps about ceil(ln N) + 2 links; each round's random
  // contacts stand in for the ones it dials.
  const contacts = Math.min(nodes - 1, Math.ceil(Math.log(nodes)) + 2);
  const sim = new Simulator({
    nodes,
    seed,
    roundMs: ROUND_MS,
    contacts,
    contactsFor: "rumor_holders",
    settings: {
      dissemination: "random",
      // Links last one round, so a rumor waits for the next round's contacts
      // instead of being pushed at once on the link it arrived on.
      rumorFirstPush: "next_round",
      antiEntropyIntervalMs: 24 * 3600 * 1000,
      antiEntropyJitter: 0,
    },
  });
  const log = new DeliveryLog(sim);
  sim.write(0, UPDATE_KEY, "true");
  sim.runRounds(
    100,
    () =>
      log.count === nodes ||
      sim.nodes.every((node) => node.node.activeRumors === 0),
  );
  const rounds = log.rounds();
  const shares = sim.nodes.reduce(
    (sum, node) => sum + node.node.counters.total("rumor_shares"),
    0,
  );
  return {
    nodes,
    contacts,
    roundsToAll: log.count === nodes ? Math.max(...rounds) + 1 : NaN,
    rounds99: rounds.length >= Math.ceil(nodes * 0.99)
      ? rounds.sort((a, b) => a - b)[Math.ceil(nodes * 0.99) - 1]! + 1
      : NaN,
    missed: nodes - log.count,
    rumorsPerNode: shares / nodes,
    seconds: (performance.now() - started) / 1000,
  };
}

if (import.meta.main) {
  for (const nodes of [50, 1000, 10_000]) {
    console.log(simulateScaling(nodes));
  }
}
