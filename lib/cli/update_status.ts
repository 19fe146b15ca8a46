/**
 * `main.ts status --update ID`: queries every instance whether it has an
 * update, when it applied it and whether it still spreads it.
 *
 * @module
 */

import { GrapevineClient } from "../client.ts";
import type { UpdateReport } from "../update_tracker.ts";
import { formatTable } from "./status.ts";

/** One instance's report, or the error that prevented it. */
export interface UpdateRow {
  readonly url: string;
  readonly report?: UpdateReport;
  readonly error?: string;
}

/** Reports of every instance about one update. */
export interface UpdateStatus {
  readonly update: string;
  /** True when every instance responded and has the update or a newer version. */
  readonly complete: boolean;
  readonly instances: UpdateRow[];
}

/** Queries every URL once. */
export async function updateStatus(
  urls: string[],
  id: string,
  token?: string,
): Promise<UpdateStatus> {
  const instances = await Promise.all(urls.map(async (url) => {
    try {
      const client = new GrapevineClient(url, { timeoutMs: 3000, token });
      return { url, report: await client.update(id) };
    } catch (error) {
      return { url, error: (error as Error).message };
    }
  }));
  const complete = instances.every((row) =>
    row.report !== undefined && row.report.state !== "not_received"
  );
  return { update: id, complete, instances };
}

function after(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "-" : `+${ms} ms`;
}

/** Prints the table and a summary line, or JSON. */
export function printUpdateStatus(status: UpdateStatus, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(status, null, 2));
    return;
  }
  const rows = [[
    "INSTANCE",
    "REGION",
    "STATE",
    "APPLIED",
    "SOURCE",
    "FROM",
    "DONE SHARING",
    "REASON",
  ]];
  for (const row of status.instances) {
    const report = row.report;
    rows.push(
      report
        ? [
          report.instance,
          report.region,
          report.state,
          after(report.applied_after_ms),
          report.source ?? "-",
          report.from ?? "-",
          after(report.done_after_ms),
          report.done_reason ?? "-",
        ]
        : [row.url, "?", "unreachable", "-", "-", "-", "-", "-"],
    );
  }
  console.log(formatTable(rows));

  const answered = status.instances.filter((row) => row.report);
  const have = answered.filter((row) => row.report!.state !== "not_received");
  const spreading =
    answered.filter((row) => row.report!.state === "spreading").length;
  const times = have.map((row) => row.report!.applied_after_ms)
    .filter((ms): ms is number => ms !== null);
  const slowest = times.length > 0 ? `, slowest +${Math.max(...times)} ms` : "";
  const unreachable = status.instances.length - answered.length;
  console.log(
    `\n${have.length} of ${status.instances.length} instances have ${status.update}` +
      (spreading > 0 ? `, ${spreading} still spreading it` : "") +
      slowest +
      (unreachable > 0 ? `, ${unreachable} unreachable` : ""),
  );
}
