import assert from "node:assert/strict";
import { parseIntList } from "../lib/cli/simulate.ts";
import { UsageError } from "../lib/cli/command.ts";
import { renderSvg } from "../lib/sim/svg.ts";
import { formatTable } from "../lib/sim/table.ts";
import {
  antiEntropyCurve,
  asymptoticRounds,
  meanFieldRounds,
  sirFinalSusceptible,
  solveSir,
} from "../lib/sim/theory.ts";

Deno.test("solveSir conserves nodes and ends at the final size", () => {
  const points = solveSir({ beta: 1, gamma: 0.25, i0: 0.001, until: 120 });
  for (const point of points) {
    assert.ok(
      Math.abs(point.s + point.i + point.r - 1) < 1e-9,
      `t = ${point.t}`,
    );
  }
  const last = points.at(-1)!;
  assert.ok(last.i < 1e-6, "epidemic over");
  assert.ok(Math.abs(last.s - sirFinalSusceptible(4)) < 1e-3, `s = ${last.s}`);
});

Deno.test("sirFinalSusceptible solves the final-size equation", () => {
  assert.equal(sirFinalSusceptible(0.5), 1);
  for (const r0 of [1.5, 2, 4, 6]) {
    const s = sirFinalSusceptible(r0);
    assert.ok(s > 0, `R0 ${r0}`);
    assert.ok(s < 1, `R0 ${r0}`);
    assert.ok(Math.abs(s - Math.exp(-r0 * (1 - s))) < 1e-12, `R0 ${r0}`);
  }
  assert.ok(sirFinalSusceptible(4) < sirFinalSusceptible(2));
});

Deno.test("anti-entropy mean field orders the modes", () => {
  for (const n of [100, 1000, 10_000]) {
    const pushPull = meanFieldRounds("push-pull", n, 1);
    const pull = meanFieldRounds("pull", n, 1);
    const push = meanFieldRounds("push", n, 1);
    assert.ok(pushPull <= pull, `N ${n}: push-pull ${pushPull}, pull ${pull}`);
    assert.ok(pull < push, `N ${n}: pull ${pull}, push ${push}`);
    assert.ok(meanFieldRounds("push", n, 0.95) < push);
  }
  const curve = antiEntropyCurve("pull", 1000, 3);
  assert.equal(curve.length, 4);
  assert.ok(Math.abs(curve[1]! - curve[0]! ** 2) < 1e-15);
  assert.ok(Math.abs(asymptoticRounds("push-pull", 9) - 2) < 1e-12);
});

Deno.test("renderSvg draws every series", () => {
  const svg = renderSvg({
    title: "A <test>",
    xLabel: "x",
    yLabel: "y",
    yLog: true,
    series: [
      { name: "one", points: [[1, 0.1], [2, 0.01]] },
      { name: "two", points: [[1, 0.5], [2, 0.2]], style: "markers" },
      { name: "three", points: [[1, 1], [2, 0.3]], style: "dashed" },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /A &lt;test&gt;/);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
  assert.equal(
    (svg.match(/<circle/g) ?? []).length,
    3,
    "2 markers and a legend dot",
  );
  assert.throws(
    () =>
      renderSvg({
        title: "",
        xLabel: "x",
        yLabel: "y",
        yLog: true,
        series: [{ name: "z", points: [[1, 0]] }],
      }),
    /logarithmic axis "y"/,
  );
});

Deno.test("formatTable pads columns", () => {
  const text = formatTable(["k", "residue"], [["1", "0.2"], ["10", "0.01"]]);
  assert.equal(
    text,
    [" k  residue", "--  -------", " 1      0.2", "10     0.01"].join("\n"),
  );
});

Deno.test("parseIntList reads lists and ranges", () => {
  assert.deepEqual(parseIntList("1..5", "k", 1, 10), [1, 2, 3, 4, 5]);
  assert.deepEqual(parseIntList("100, 1000", "n", 2, 10_000), [100, 1000]);
  assert.throws(() => parseIntList("0..3", "k", 1, 10), UsageError);
  assert.throws(() => parseIntList("1,x", "k", 1, 10), /Invalid --k "1,x"/);
  assert.throws(() => parseIntList("5..1", "k", 1, 10), UsageError);
});
