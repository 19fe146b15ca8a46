// The simulator and a real node make the same decisions: every input that
// the simulator gave a traced node, replayed through a fresh GossipNode
// with the same settings and seed, yields the same frames, KV operations
// and return values.

import assert from "node:assert/strict";
import {
  paperModel,
  UPDATE_KEY,
  updateOnlyState,
} from "../lib/sim/experiments/common.ts";
import { Simulator, type SimulatorOptions } from "../lib/sim/simulator.ts";
import { replayTrace, type Trace } from "../lib/sim/trace.ts";

function tracedRun(options: SimulatorOptions, rounds: number): Trace[] {
  const sim = new Simulator(options);
  sim.write(0, UPDATE_KEY, "true");
  sim.write(3, "other", "42");
  sim.runRounds(rounds);
  return (options.traced ?? []).map((index) => sim.nodes[index]!.trace!);
}

function frameTypes(trace: Trace): Set<string> {
  const types = new Set<string>();
  for (const output of trace.outputs) {
    if (output.effect === "send") types.add(output.frame.type);
  }
  return types;
}

Deno.test("replay of rumor and anti-entropy matches", () => {
  const traces = tracedRun({
    nodes: 50,
    seed: 12,
    traced: [0, 3, 7, 21],
    settings: paperModel({
      feedbackLimit: 2,
      antiEntropyIntervalMs: 2000,
      antiEntropyJitter: 0.25,
    }),
    network: { lossRate: 0.05 },
  }, 15);
  const seen = new Set<string>();
  for (const trace of traces) {
    assert.ok(trace.inputs.length > 20, `${trace.self.id} got inputs`);
    assert.deepEqual(replayTrace(trace), trace.outputs, trace.self.id);
    for (const type of frameTypes(trace)) seen.add(type);
  }
  for (const type of ["rumor", "feedback", "sync_request", "sync_response"]) {
    assert.ok(seen.has(type), `some traced node sent ${type}`);
  }
});

Deno.test("replay with at-once pushes matches", () => {
  const traces = tracedRun({
    nodes: 30,
    seed: 5,
    traced: [0, 1, 2],
    contacts: 3,
    settings: { fanout: 2, antiEntropyIntervalMs: 3000 },
  }, 10);
  for (const trace of traces) {
    assert.deepEqual(replayTrace(trace), trace.outputs, trace.self.id);
  }
});

Deno.test("replay of HTTP anti-entropy matches", () => {
  const sim = new Simulator({
    nodes: 10,
    seed: 8,
    traced: [1],
    contactsFor: "rumor_holders",
    settings: paperModel({ antiEntropyIntervalMs: 1000 }),
    state: (index) => index === 0 ? updateOnlyState() : undefined,
  });
  sim.nodes[1]!.node.members.apply(
    { ...sim.nodes[0]!.info, state: "alive" },
    sim.nowMs,
  );
  sim.runRounds(4);
  const trace = sim.nodes[1]!.trace!;
  const calls = new Set(trace.inputs.map((input) => input.call));
  assert.ok(calls.has("httpSyncOpen"), "node 1 opened an HTTP session");
  assert.ok(calls.has("httpSyncNext"), "node 1 merged a response");
  // The member record was added outside the wrapper, so the replayed node
  // does not request the HTTP session itself. It gets the session's inputs
  // all the same, and must merge and respond exactly as the simulated one.
  const replayed = replayTrace(trace);
  const sessionOutputs = (outputs: typeof replayed) =>
    outputs.filter((output) =>
      output.effect === "persist" || output.effect === "returned"
    );
  assert.ok(sessionOutputs(trace.outputs).length > 0);
  assert.deepEqual(sessionOutputs(replayed), sessionOutputs(trace.outputs));
});

Deno.test("replay detects a changed decision", () => {
  const [trace] = tracedRun({
    nodes: 20,
    seed: 3,
    traced: [0],
    settings: paperModel({ feedbackLimit: 2 }),
  }, 6);
  const altered = { ...trace!, seed: trace!.seed + 1 };
  assert.notDeepEqual(replayTrace(altered), trace!.outputs);
});
