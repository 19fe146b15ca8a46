import { measurePropagation } from "./propagation.ts";
for (const n of [20, 50]) {
  const r = await measurePropagation(n, 100, "tree");
  console.log(
    n,
    JSON.stringify({
      g: r.gossip,
      s: r.star,
      f: r.gossipFramesPerInstance.toFixed(2),
    }),
  );
}
