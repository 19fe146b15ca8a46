/**
 * Simulator throughput: events per second for fleets of 1000 and 10,000
 * nodes, with rumor mongering alone and with push-pull anti-entropy every
 * round. An event is a node tick, a delivered or dropped frame, or an HTTP
 * message.
 *
 * ```sh
 * deno run -A bench/sim_bench.ts          # prints a table
 * deno run -A bench/sim_bench.ts --json   # the same as JSON
 * ```
 *
 * @module
 */

import {
  DeliveryLog,
  paperModel,
  ROUND_MS,
  UPDATE_KEY,
  updateOnlyState,
} from "../lib/sim/experiments/common.ts";
import { Simulator } from "../lib/sim/simulator.ts";
import { formatTable } from "../lib/sim/table.ts";

interface Row {
  scenario: string;
  nodes: number;
  rounds: number;
  events: number;
  buildSeconds: number;
  runSeconds: number;
  eventsPerSecond: number;
}

function measure(scenario: string, nodes: number): Row {
  const rumor = scenario === "rumor";
  const buildStart = performance.now();
  const sim = new Simulator({
    nodes,
    seed: 1,
    roundMs: ROUND_MS,
    contactsFor: rumor ? "rumor_holders" : "all",
    settings: rumor
      ? paperModel({ feedbackLimit: 2 })
      : paperModel({ antiEntropyIntervalMs: ROUND_MS }),
    state: rumor
      ? undefined
      : (index) => index === 0 ? updateOnlyState() : undefined,
  });
  const log = new DeliveryLog(sim);
  if (rumor) sim.write(0, UPDATE_KEY, "true");
  else log.markStart(0);
  const runStart = performance.now();
  const rounds = sim.runRounds(
    200,
    () =>
      rumor
        ? sim.nodes.every((node) => node.node.activeRumors === 0)
        : log.count === nodes,
  );
  const runSeconds = (performance.now() - runStart) / 1000;
  return {
    scenario: rumor ? "rumor (feedback k = 2)" : "push-pull anti-entropy",
    nodes,
    rounds,
    events: sim.events,
    buildSeconds: (runStart - buildStart) / 1000,
    runSeconds,
    eventsPerSecond: sim.events / runSeconds,
  };
}

if (import.meta.main) {
  const rows: Row[] = [];
  for (const scenario of ["rumor", "anti-entropy"]) {
    for (const nodes of [1000, 10_000]) rows.push(measure(scenario, nodes));
  }
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log(formatTable(
      ["scenario", "nodes", "rounds", "events", "build s", "run s", "events/s"],
      rows.map((row) => [
        row.scenario,
        String(row.nodes),
        String(row.rounds),
        String(row.events),
        row.buildSeconds.toFixed(2),
        row.runSeconds.toFixed(2),
        String(Math.round(row.eventsPerSecond)),
      ]),
    ));
    console.log(
      `\nDeno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
    );
  }
}
