/**
 * `main.ts serve`: runs one instance until SIGINT or SIGTERM.
 *
 * @module
 */

import {
  envName,
  flagName,
  parseRawSettings,
  resolveSettings,
  type SettingName,
  SETTINGS,
  settingsFromEnv,
} from "../config.ts";
import { Instance } from "../instance.ts";
import type { Args, Command, OptionSpec } from "./command.ts";

function settingOptions(): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {};
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const defaultText = Array.isArray(spec.default)
      ? ""
      : spec.default === undefined || spec.default === ""
      ? ""
      : ` (default ${spec.default})`;
    options[flagName(name as SettingName)] = {
      type: "string",
      value: "choices" in spec
        ? spec.choices.join("|")
        : spec.kind === "list"
        ? "LIST"
        : spec.kind === "string"
        ? "TEXT"
        : "N",
      help: `${spec.help}${defaultText}; env ${envName(name as SettingName)}`,
    };
  }
  options.kv = { type: "string", value: "PATH", help: "Same as --kv-path" };
  return options;
}

/** Reads settings from flags over environment variables over defaults. */
export function settingsFromArgs(args: Args) {
  const raw: Partial<Record<SettingName, string>> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const value = args.values[flagName(name)];
    if (typeof value === "string") raw[name] = value;
  }
  if (typeof args.values.kv === "string" && raw.kvPath === undefined) {
    raw.kvPath = args.values.kv;
  }
  const fromFlags = parseRawSettings(raw, (name) => `--${flagName(name)}`);
  return resolveSettings({ ...settingsFromEnv(), ...fromFlags });
}

/** The `serve` command. */
export const serveCommand: Command = {
  name: "serve",
  usage: "[options]",
  summary:
    "Run one Grapevine instance: the HTTP API, the /gossip WebSocket endpoint and gossip with its peers. " +
    "Every option can also be set with the environment variable named in its help. Stops cleanly on SIGINT or SIGTERM.",
  options: settingOptions(),
  async run(args) {
    const settings = settingsFromArgs(args);
    const instance = await Instance.start(settings);
    const stopped = Promise.withResolvers<void>();
    const stop = () => {
      instance.log.info("signal received; stopping");
      instance.close().then(stopped.resolve, stopped.reject);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    await stopped.promise;
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    return 0;
  },
};
