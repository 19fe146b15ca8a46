/**
 * Single simulation runs by name, so that worker threads can run them from
 * a message. Every job takes and returns plain data.
 *
 * @module
 */

import { runAntiEntropy } from "./experiments/anti_entropy.ts";
import { runRumor } from "./experiments/rumor.ts";

/** The jobs a worker can run. */
export const JOBS = {
  rumor: runRumor,
  antiEntropy: runAntiEntropy,
} as const;

/** Name of a job. */
export type JobName = keyof typeof JOBS;

/** Parameters of a job. */
export type JobParams<Name extends JobName> = Parameters<typeof JOBS[Name]>[0];

/** Result of a job. */
export type JobResult<Name extends JobName> = ReturnType<typeof JOBS[Name]>;
