/**
 * `main.ts status`: asks every instance of the fleet for its status and
 * says whether they all hold the same entries. With `--update ID`, queries
 * each instance whether it has that update and how long it took.
 *
 * @module
 */

import { dirname } from "node:path";
import { GrapevineClient } from "../client.ts";
import type { StatusReport } from "../http/status.ts";
import { loadManifest, planInstances } from "../manifest.ts";
import { parseUpdateId } from "../update_tracker.ts";
import { type Args, type Command, intOption, UsageError } from "./command.ts";
import { readToken, tokenOption } from "./credentials.ts";
import { manifestPath } from "./fleet.ts";
import { printUpdateStatus, updateStatus } from "./update_status.ts";

/** One row of the fleet status. */
export interface InstanceStatus {
  readonly url: string;
  readonly report?: StatusReport;
  readonly error?: string;
}

/** Summary of a fleet status check. */
export interface FleetStatus {
  /** True when every instance answered and all digests are equal. */
  readonly agree: boolean;
  readonly instances: InstanceStatus[];
}

/** Queries every URL once, with a bearer token if given. */
export async function fleetStatus(
  urls: string[],
  token?: string,
): Promise<FleetStatus> {
  const instances = await Promise.all(urls.map(async (url) => {
    try {
      const report = await new GrapevineClient(url, { timeoutMs: 3000, token })
        .status();
      return { url, report };
    } catch (error) {
      return { url, error: (error as Error).message };
    }
  }));
  const digests = new Set(instances.map((row) => row.report?.digest));
  const agree = instances.every((row) => row.report) && digests.size === 1;
  return { agree, instances };
}

/**
 * Returns the instance URLs of `--urls`; of `--url` and the members it
 * lists; or of the manifest and the members its first instance lists.
 */
export async function fleetUrls(args: Args): Promise<string[]> {
  if (typeof args.values.urls === "string") {
    return args.values.urls.split(",").map((url) => url.trim()).filter(
      Boolean,
    );
  }
  if (typeof args.values.url === "string") {
    const url = args.values.url.replace(/\/$/, "");
    return [...new Set([url, ...await discoveredUrls([url])])];
  }
  const path = manifestPath(args);
  const size = args.values.size === undefined
    ? undefined
    : intOption(args, "size", 5, 1, 500);
  const planned = planInstances(await loadManifest(path), dirname(path), size)
    .map((instance) => instance.url);
  return [...new Set([...planned, ...await discoveredUrls(planned)])];
}

/**
 * Requests the members of the first manifest instance that responds, so that a
 * fleet started with `fleet --size N`, or joined by other instances, is
 * checked whole. Suspect and dead members count, so that an instance that
 * failed shows as unreachable until the members forget it
 * (`deadMemberRetentionMs`); members that left do not.
 */
async function discoveredUrls(planned: string[]): Promise<string[]> {
  for (const url of planned) {
    try {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 2000);
      const response = await fetch(`${url}/v1/members`, {
        signal: controller.signal,
      }).finally(() => clearTimeout(timer));
      if (!response.ok) {
        await response.body?.cancel();
        continue;
      }
      const report = await response.json() as {
        members: { url: string | null; state: string }[];
      };
      return report.members
        .filter((member) => member.url && member.state !== "left")
        .map((member) => member.url!);
    } catch {
      // Try the next instance.
    }
  }
  return [];
}

/** Formats rows as left-aligned columns. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) =>
    Math.max(...rows.map((row) => row[column]!.length))
  );
  return rows.map((row) =>
    row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()
  ).join("\n");
}

function table(status: FleetStatus): string {
  const rows = [[
    "ID",
    "REGION",
    "URL",
    "ENTRIES",
    "DIGEST",
    "LINKS",
    "RUMORS",
  ]];
  for (const row of status.instances) {
    const report = row.report;
    rows.push(
      report
        ? [
          report.id,
          report.region,
          row.url,
          String(report.entries),
          report.digest.slice(0, 12),
          report.links.map((link) => link.peer).join(",") || "-",
          String(report.rumors_active),
        ]
        : ["?", "?", row.url, "-", "unreachable", "-", "-"],
    );
  }
  return formatTable(rows);
}

/**
 * Lists every member known to any instance: its state as the instances see
 * it (for example `alive 4, suspect 1`), its highest incarnation, region,
 * address and the most recent contact any instance had with it.
 */
export function membersTable(status: FleetStatus): string {
  const byId = new Map<string, {
    region: string;
    url: string | null;
    incarnation: number;
    lastContact: string;
    states: Map<string, number>;
  }>();
  for (const row of status.instances) {
    for (const member of row.report?.members ?? []) {
      const entry = byId.get(member.id) ?? {
        region: member.region,
        url: member.url,
        incarnation: member.incarnation,
        lastContact: member.last_contact,
        states: new Map<string, number>(),
      };
      if (member.incarnation >= entry.incarnation) {
        entry.incarnation = member.incarnation;
        entry.url = member.url;
      }
      if (member.last_contact > entry.lastContact) {
        entry.lastContact = member.last_contact;
      }
      entry.states.set(member.state, (entry.states.get(member.state) ?? 0) + 1);
      byId.set(member.id, entry);
    }
  }
  const rows = [[
    "MEMBER",
    "STATE (instances)",
    "INCARNATION",
    "REGION",
    "URL",
    "LAST CONTACT",
  ]];
  for (const [id, entry] of [...byId].sort(([a], [b]) => a < b ? -1 : 1)) {
    rows.push([
      id,
      [...entry.states].map(([state, count]) => `${state} ${count}`).join(", "),
      String(entry.incarnation),
      entry.region,
      entry.url ?? "(not dialable)",
      entry.lastContact,
    ]);
  }
  return formatTable(rows);
}

/** The `status` command. */
export const statusCommand: Command = {
  name: "status",
  usage: "[options]",
  summary:
    "Show every instance's entry count, digest and links, and whether all instances agree. " +
    "Exit code 0 when they agree, 1 when they do not or one is unreachable. " +
    "With --update ID, show which instances have that update, when each applied it and whether it still spreads it; " +
    "exit code 0 when every instance has it.",
  options: {
    manifest: {
      type: "string",
      value: "PATH",
      help: "Fleet manifest listing the instances (default: deploy.yml)",
    },
    urls: {
      type: "string",
      value: "LIST",
      help: "Comma-separated instance URLs, instead of the manifest",
    },
    url: {
      type: "string",
      value: "URL",
      help:
        "One instance's base URL, instead of the manifest; the members it lists are queried too",
    },
    size: {
      type: "string",
      value: "N",
      help: "Fleet size, when the fleet was started with fleet --size N",
    },
    wait: {
      type: "string",
      value: "SECONDS",
      help:
        "Poll until all instances agree or SECONDS pass (default 0: ask once)",
    },
    members: {
      type: "boolean",
      help:
        "Also list every member with its state as each instance sees it, incarnation, region, address and last contact",
    },
    update: {
      type: "string",
      value: "ID",
      help:
        "Update id KEY@VERSION, as push prints it (set KEY at version VERSION)",
    },
    json: { type: "boolean", help: "Print the reports as JSON" },
    ...tokenOption,
  },
  details: [
    "With --update, --wait polls until every instance has the update.",
    "Times are milliseconds after the write, measured with each instance's own clock.",
  ].join("\n"),
  async run(args) {
    const urls = await fleetUrls(args);
    const token = await readToken(args);
    const waitMs = intOption(args, "wait", 0, 0, 3600) * 1000;
    const deadline = Date.now() + waitMs;
    if (typeof args.values.update === "string") {
      const id = args.values.update;
      try {
        parseUpdateId(id);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      let rows = await updateStatus(urls, id, token);
      while (!rows.complete && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        rows = await updateStatus(urls, id, token);
      }
      printUpdateStatus(rows, Boolean(args.values.json));
      return rows.complete ? 0 : 1;
    }
    let status = await fleetStatus(urls, token);
    while (!status.agree && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = await fleetStatus(urls, token);
    }

    if (args.values.json) {
      console.log(JSON.stringify(status, null, 2));
      return status.agree ? 0 : 1;
    }
    console.log(table(status));
    if (args.values.members) console.log("\n" + membersTable(status));
    const answered = status.instances.filter((row) => row.report);
    if (status.agree) {
      const report = answered[0]!.report!;
      const summary = answered.length === 1
        ? "the only instance answered"
        : `all ${answered.length} instances agree`;
      console.log(
        `\n${summary}: ${report.entries} entries, digest ${
          report.digest.slice(0, 12)
        }`,
      );
      return 0;
    }
    const unreachable = status.instances.filter((row) => !row.report)
      .map((row) => row.url);
    const digests = new Set(answered.map((row) => row.report!.digest)).size;
    const agreement = answered.length === 0
      ? "no instance answered"
      : digests === 1
      ? `the ${answered.length} answering instances agree`
      : `the ${answered.length} answering instances disagree (${digests} digests; anti-entropy should repair this within a few intervals)`;
    console.log(
      `\n${agreement}` +
        (unreachable.length > 0
          ? `; unreachable: ${unreachable.join(", ")} (is the fleet running?)`
          : ""),
    );
    return 1;
  },
};
