/**
 * `main.ts watch [PREFIX]`: prints changes under a key prefix as they
 * happen, reconnecting and resuming after a dropped connection.
 *
 * @module
 */

import type { ChangeMessage, EntryView } from "../client.ts";
import { clientFor, targetOptions } from "./config_commands.ts";
import { type Command, intOption, UsageError } from "./command.ts";

function changeLine(change: ChangeMessage): string {
  const what = change.deleted
    ? `${change.key} deleted`
    : `${change.key} = ${JSON.stringify(change.value)}`;
  const via = change.from
    ? `${change.source} from ${change.from}`
    : change.source;
  return `${change.appliedAt} ${what} (version ${change.version}, ${via})`;
}

function entryLine(entry: EntryView): string {
  return `${entry.key} = ${
    JSON.stringify(entry.value)
  } (version ${entry.version})`;
}

/** The `watch` command. */
export const watchCommand: Command = {
  name: "watch",
  usage: "[PREFIX] [options]",
  summary:
    "Print every change to keys that start with PREFIX, as one instance applies it, until Ctrl-C. " +
    "Reconnects after a dropped connection and prints the changes missed meanwhile.",
  details: [
    "When the missed changes cannot be replayed (the instance restarted), it prints",
    "a reset line and, with --list, every current entry again.",
    "With --json, each line is one JSON object: a change, a reset with its entries, or ready.",
  ].join("\n"),
  options: {
    ...targetOptions,
    list: {
      type: "boolean",
      help: "Print the current entries first, and again after a reset",
    },
    "last-event-id": {
      type: "string",
      value: "ID",
      help: "Resume after this event id, from an earlier --json line",
    },
    count: {
      type: "string",
      value: "N",
      help: "Exit after N changes (default: run until Ctrl-C)",
    },
    json: { type: "boolean", help: "Print one JSON object per line" },
  },
  async run(args) {
    const [prefix = "", ...rest] = args.positionals;
    if (rest.length > 0) throw new UsageError("Expected at most one PREFIX");
    const count = args.values.count === undefined
      ? Infinity
      : intOption(args, "count", 1, 1, 1_000_000_000);
    const client = await clientFor(args);
    const json = Boolean(args.values.json);
    const controller = new AbortController();
    const stop = () => controller.abort();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    let changes = 0;
    let connections = 0;
    try {
      const lastEventId = args.values["last-event-id"];
      for await (
        const message of client.watch(prefix, {
          signal: controller.signal,
          list: Boolean(args.values.list),
          lastEventId: typeof lastEventId === "string"
            ? lastEventId
            : undefined,
          onRetry: (error, delayMs) =>
            console.error(
              `${error.message}; retrying in ${(delayMs / 1000).toFixed(1)} s`,
            ),
        })
      ) {
        if (json) console.log(JSON.stringify(message));
        if (message.type === "change") {
          if (!json) console.log(changeLine(message));
          if (++changes >= count) break;
        } else if (message.type === "ready") {
          connections++;
          console.error(
            `${connections === 1 ? "watching" : "reconnected to"} ${
              prefix ? `keys under ${JSON.stringify(prefix)}` : "every key"
            } at ${client.baseUrl} (instance ${message.instance})`,
          );
        } else if (message.type === "reset") {
          if (message.reason !== "initial listing") {
            console.error(
              `reset: ${message.reason}${
                args.values.list
                  ? ""
                  : "; changes made meanwhile are not shown (run with --list to print the current entries after a reset)"
              }`,
            );
          }
          if (!json && args.values.list) {
            for (const entry of message.entries) console.log(entryLine(entry));
          }
        }
      }
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
    return 0;
  },
};
