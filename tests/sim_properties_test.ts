// Properties the epidemic theory guarantees, checked on the simulator with
// fixed seeds and small fleets so that the file runs in a few seconds.

import assert from "node:assert/strict";
import { runAntiEntropy } from "../lib/sim/experiments/anti_entropy.ts";
import { runOffline } from "../lib/sim/experiments/offline.ts";
import {
  predictedResidue,
  rumorJobs,
  summarizeRumor,
} from "../lib/sim/experiments/rumor.ts";
import { runRumorAe } from "../lib/sim/experiments/rumor_ae.ts";
import { runSir } from "../lib/sim/experiments/sir.ts";
import { runJobs } from "../lib/sim/parallel.ts";

Deno.test("push-pull reaches N = 1000 near log2 N", () => {
  const bound = Math.ceil(Math.log2(1000)) + 3;
  for (const seed of [1, 2, 3]) {
    const run = runAntiEntropy({ n: 1000, mode: "push-pull", seed });
    assert.ok(run.rounds100 <= bound, `seed ${seed}: ${run.rounds100} rounds`);
    assert.ok(run.rounds95 < run.rounds100, `seed ${seed}`);
  }
});

Deno.test("pull and push-pull beat push", () => {
  const rounds = (mode: "push" | "pull" | "push-pull") =>
    runAntiEntropy({ n: 300, mode, seed: 5 }).rounds100;
  const push = rounds("push");
  assert.ok(rounds("pull") < push, `pull vs push ${push}`);
  assert.ok(rounds("push-pull") < push, `push-pull vs push ${push}`);
});

const RUMOR = { n: 400, ks: [1, 2, 3, 4], runs: 4, seed: 11 };

Deno.test("blind residue falls and traffic rises with k", async () => {
  const jobs = rumorJobs({ ...RUMOR, variants: ["blind"] });
  const rows = summarizeRumor(jobs, await runJobs("rumor", jobs, 1));
  for (let i = 1; i < rows.length; i++) {
    const [before, after] = [rows[i - 1]!, rows[i]!];
    assert.ok(after.residue < before.residue, `residue at k = ${after.k}`);
    assert.ok(after.traffic > before.traffic, `traffic at k = ${after.k}`);
  }
  for (const row of rows.filter((row) => row.k >= 2)) {
    // A blind node pushes at most k times, fewer when its random contact
    // of a round already has the update and the rumor stops early.
    const bound = row.k * (1 - row.residue);
    assert.ok(row.traffic <= bound + 1e-9, `traffic at k = ${row.k}`);
    assert.ok(row.traffic >= 0.95 * bound, `traffic at k = ${row.k}`);
    const predicted = predictedResidue("blind", row.k);
    assert.ok(
      Math.abs(row.residue - predicted) < 0.03,
      `k = ${row.k}: ${row.residue} against ${predicted}`,
    );
  }
});

Deno.test("feedback residue falls and traffic rises with k", async () => {
  const jobs = rumorJobs({ ...RUMOR, variants: ["feedback"] });
  const rows = summarizeRumor(jobs, await runJobs("rumor", jobs, 1));
  for (let i = 1; i < rows.length; i++) {
    const [before, after] = [rows[i - 1]!, rows[i]!];
    assert.ok(after.residue < before.residue, `residue at k = ${after.k}`);
    assert.ok(after.traffic > before.traffic, `traffic at k = ${after.k}`);
  }
  for (const row of rows) {
    // Push rumor mongering keeps s close to e^-m (Demers et al., 1987).
    assert.ok(
      Math.abs(row.residue - Math.exp(-row.traffic)) < 0.03,
      `k = ${row.k}: residue ${row.residue}, traffic ${row.traffic}`,
    );
  }
});

Deno.test("SIR run conserves nodes and ends", () => {
  const run = runSir({ n: 300, k: 3, fanout: 1, rounds: 40, seed: 2 });
  for (let round = 0; round < run.s.length; round++) {
    const total = run.s[round]! + run.i[round]! + run.r[round]!;
    assert.ok(Math.abs(total - 1) < 1e-9, `round ${round}`);
  }
  assert.equal(run.i.at(-1), 0, "no infective node at the end");
  assert.ok(run.s.at(-1)! < 0.2, `residue ${run.s.at(-1)}`);
});

Deno.test("anti-entropy covers the rumor residue", () => {
  const run = runRumorAe({ n: 300, k: 1, aeEvery: 5, seed: 4 });
  assert.ok(run.residue > 0.1, `k = 1 leaves many nodes: ${run.residue}`);
  assert.ok(run.fullRound > run.rumorEnd, "anti-entropy finished the job");
  assert.ok(run.aeRounds >= 1, `${run.aeRounds} rounds`);
  assert.ok(run.aeRounds <= 12, `${run.aeRounds} rounds`);
});

Deno.test("returning nodes get the update", async () => {
  const run = await runOffline({
    n: 200,
    offline: 0.2,
    returnRound: 20,
    k: 4,
    aeEvery: 5,
    seed: 6,
  });
  assert.equal(run.delays.length, 40, "every returned node got the update");
  assert.ok(run.onlineReached > 0.95, `online reached ${run.onlineReached}`);
  assert.ok(Number.isFinite(run.allAfter), "every node got it");
  assert.ok(Math.max(...run.delays) <= run.allAfter);
});

Deno.test("child processes return in-process results", async () => {
  const jobs = [
    { n: 50, mode: "push-pull" as const, seed: 1 },
    { n: 60, mode: "pull" as const, seed: 2 },
    { n: 70, mode: "push" as const, seed: 3 },
  ];
  const local = await runJobs("antiEntropy", jobs, 1);
  const spread = await runJobs("antiEntropy", jobs, 2);
  assert.deepEqual(spread, local);
});
