/**
 * Client commands against one instance: `push`, `get`, `delete`, `list`.
 *
 * @module
 */

import { dirname } from "node:path";
import { ClientError, GrapevineClient } from "../client.ts";
import { flattenConfig, parseConfigText } from "../config_file.ts";
import { loadManifest, planInstances } from "../manifest.ts";
import {
  type Args,
  type Command,
  intOption,
  type OptionSpec,
  UsageError,
} from "./command.ts";
import {
  readSigner,
  readToken,
  signingOption,
  tokenOption,
} from "./credentials.ts";
import { manifestPath } from "./fleet.ts";

/** Options shared by every client command. */
export const targetOptions: Record<string, OptionSpec> = {
  url: {
    type: "string",
    value: "URL",
    help: "Base URL of the instance (default: the manifest's first instance)",
  },
  manifest: {
    type: "string",
    value: "PATH",
    help: "Fleet manifest for the default URL (default: deploy.yml)",
  },
  ...tokenOption,
};

/** Most changes sent in one batch request. */
const BATCH_SIZE = 500;
/**
 * Most bytes of JSON in one batch request, well under the 1 MiB default of
 * `maxFrameBytes`, which also limits HTTP bodies.
 */
const BATCH_BYTES = 512 * 1024;

/**
 * Splits entries into batches of at most {@link BATCH_SIZE} entries and
 * about {@link BATCH_BYTES} bytes; an entry larger than that goes alone.
 */
export function batches<T>(entries: readonly (readonly [string, T])[]) {
  const result: (readonly [string, T])[][] = [];
  let current: (readonly [string, T])[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entry[0].length + JSON.stringify(entry[1]).length + 8;
    const full = current.length >= BATCH_SIZE ||
      (current.length > 0 && bytes + size > BATCH_BYTES);
    if (full) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) result.push(current);
  return result;
}

/**
 * Returns a client of `--url`, or of the manifest's first instance, with
 * the bearer token and, when `sign` is set, the publisher's signer.
 */
export async function clientFor(
  args: Args,
  options: { sign?: boolean } = {},
): Promise<GrapevineClient> {
  const token = await readToken(args);
  const signer = options.sign ? await readSigner(args) : undefined;
  let url: string;
  if (typeof args.values.url === "string") {
    url = args.values.url;
  } else {
    const path = manifestPath(args);
    url = planInstances(await loadManifest(path), dirname(path))[0]!.url;
  }
  try {
    return new GrapevineClient(url, { token, signer });
  } catch (error) {
    // A malformed --url is a usage error, exit code 2 like other options.
    if (error instanceof ClientError && error.code === "invalid_url") {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

/** Parses a command-line value: JSON when it parses, otherwise a string. */
export function parseValue(text: string, forceString: boolean): unknown {
  if (forceString) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function print(value: unknown): void {
  console.log(
    typeof value === "string" ? value : JSON.stringify(value, null, 2),
  );
}

/** `push KEY VALUE` and `push --file FILE`. */
export const pushCommand: Command = {
  name: "push",
  usage: "KEY VALUE | --file FILE [options]",
  summary:
    "Set one key, or every entry of a JSON or YAML file, through one instance.",
  details: [
    'VALUE is read as JSON when it is valid JSON (true, 42, {"a":1}), otherwise as a string.',
    "With --file, each top-level key of the file becomes one entry holding everything under it;",
    "--depth N opens nested mappings N levels deep and joins their keys with dots",
    "(features: {checkout: ...} at --depth 2 becomes the key features.checkout).",
  ].join("\n"),
  options: {
    ...targetOptions,
    ...signingOption,
    file: { type: "string", value: "FILE", help: "JSON or YAML file to push" },
    depth: {
      type: "string",
      value: "N",
      help: "Levels of nested mappings turned into dotted keys (default 1)",
    },
    prefix: {
      type: "string",
      value: "TEXT",
      help: "Text put before every key from --file",
    },
    string: {
      type: "boolean",
      help: "Store VALUE as a string, even if it parses as JSON",
    },
    json: { type: "boolean", help: "Print the result as JSON" },
  },
  async run(args) {
    const client = await clientFor(args, { sign: true });
    const file = args.values.file;
    if (typeof file === "string") {
      if (args.positionals.length > 0) {
        throw new UsageError("Give either KEY VALUE or --file FILE, not both");
      }
      const depth = intOption(args, "depth", 1, 1, 32);
      const prefix = typeof args.values.prefix === "string"
        ? args.values.prefix
        : "";
      const data = parseConfigText(await Deno.readTextFile(file), file);
      const entries = Object.entries(flattenConfig(data, depth))
        .map(([key, value]) => [prefix + key, value] as const);
      let pushed = 0;
      for (const chunk of batches(entries)) {
        const result = await client.batch({ set: Object.fromEntries(chunk) });
        pushed += result.count;
      }
      if (args.values.json) print({ pushed, url: client.baseUrl });
      else {console.log(
          `pushed ${pushed} entries from ${file} to ${client.baseUrl}`,
        );}
      return 0;
    }

    const [key, value, ...rest] = args.positionals;
    if (key === undefined || value === undefined || rest.length > 0) {
      throw new UsageError("Expected KEY VALUE, or --file FILE");
    }
    const result = await client.put(
      key,
      parseValue(value, Boolean(args.values.string)),
    );
    if (args.values.json) print(result);
    else {
      console.log(
        `set ${result.key} at version ${result.version}; follow it with: status --update ${result.key}@${result.version}`,
      );
    }
    return 0;
  },
};

/** `get KEY`. */
export const getCommand: Command = {
  name: "get",
  usage: "KEY [options]",
  summary: "Print the value of a key (exit code 1 when it does not exist).",
  options: {
    ...targetOptions,
    json: { type: "boolean", help: "Print key, value and version as JSON" },
  },
  async run(args) {
    const [key, ...rest] = args.positionals;
    if (key === undefined || rest.length > 0) {
      throw new UsageError("Expected one KEY");
    }
    const client = await clientFor(args);
    let entry;
    try {
      entry = await client.entry(key);
    } catch (error) {
      if (!(error instanceof ClientError) || error.status !== 404) throw error;
      console.error(`${error.message} at ${client.baseUrl}`);
      return 1;
    }
    print(args.values.json ? entry : entry.value);
    return 0;
  },
};

/** `delete KEY`. */
export const deleteCommand: Command = {
  name: "delete",
  usage: "KEY [options]",
  summary:
    "Delete a key. The delete spreads like a write, as a tombstone that wins over older values.",
  options: {
    ...targetOptions,
    ...signingOption,
    json: { type: "boolean", help: "Print the result as JSON" },
  },
  async run(args) {
    const [key, ...rest] = args.positionals;
    if (key === undefined || rest.length > 0) {
      throw new UsageError("Expected one KEY");
    }
    const client = await clientFor(args, { sign: true });
    const result = await client.delete(key);
    if (args.values.json) print(result);
    else {
      console.log(
        `deleted ${result.key} at version ${result.version}${
          result.existed ? "" : " (it did not exist here)"
        }`,
      );
    }
    return 0;
  },
};

/** `list`. */
export const listCommand: Command = {
  name: "list",
  usage: "[options]",
  summary: "List keys and values held by one instance.",
  options: {
    ...targetOptions,
    prefix: {
      type: "string",
      value: "TEXT",
      help: "Only keys that start with TEXT",
    },
    json: { type: "boolean", help: "Print entries with versions as JSON" },
  },
  async run(args) {
    const client = await clientFor(args);
    const prefix = typeof args.values.prefix === "string"
      ? args.values.prefix
      : "";
    const entries = await client.list(prefix);
    if (args.values.json) {
      print(entries);
      return 0;
    }
    for (const entry of entries) {
      console.log(`${entry.key} = ${JSON.stringify(entry.value)}`);
    }
    console.error(`${entries.length} entries at ${client.baseUrl}`);
    return 0;
  },
};

export { ClientError };
