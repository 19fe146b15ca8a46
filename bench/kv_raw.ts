/**
 * The raw Deno KV baseline of the throughput benchmark: `concurrency`
 * loops, each committing one `kv.atomic().set(…)` of a value of `bytes`
 * bytes at a time, into a fresh KV file, for `seconds`. Prints one JSON
 * line with the number of commits and the seconds they took.
 *
 * ```sh
 * deno run -A --unstable-kv bench/kv_raw.ts --path /tmp/raw.kv --concurrency 32 --seconds 5 --bytes 170
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const args = parseArgs({
  args: Deno.args,
  options: {
    path: { type: "string" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "5" },
    bytes: { type: "string", default: "170" },
  },
});
const path = args.values.path;
if (!path) throw new Error("Missing --path: the KV file to write");
const concurrency = Number(args.values.concurrency);
const seconds = Number(args.values.seconds);
const value = "x".repeat(Number(args.values.bytes));

const kv = await Deno.openKv(path);
let commits = 0;
const started = performance.now();
const deadline = started + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async (_, worker) => {
    for (let n = 0; performance.now() < deadline; n++) {
      const result = await kv.atomic()
        .set(["entry", `load.w${worker}.${n}`], {
          value,
          version: [Date.now(), 0, "raw"],
        })
        .commit();
      if (result.ok) commits++;
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
kv.close();
console.log(JSON.stringify({ commits, seconds: elapsed }));
