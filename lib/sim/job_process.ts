/**
 * Child process entry point for {@link runJobs}: reads `{ name, jobs }` as
 * JSON from standard input, runs each job and writes the results as a JSON
 * array to standard output.
 *
 * @module
 */

import { type JobName, JOBS } from "./jobs.ts";

if (import.meta.main) {
  const input = await new Response(Deno.stdin.readable).text();
  const { name, jobs } = JSON.parse(input) as {
    name: JobName;
    jobs: unknown[];
  };
  const run = JOBS[name] as (params: unknown) => unknown;
  const results = jobs.map((job) => run(job));
  await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(results)));
}
