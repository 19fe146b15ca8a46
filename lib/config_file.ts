/**
 * Turns a JSON or YAML config file into entries for `main.ts push --file`.
 *
 * With depth 1 (the default) every top-level key becomes one entry whose
 * value is everything under it. With depth N, objects are opened N levels
 * deep and their paths joined with dots: `{"features": {"checkout": {...}}}`
 * at depth 2 gives the key `features.checkout`. Arrays and scalars are
 * always values, never opened.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";

/** Raised for a file that cannot be read or is not a mapping. */
export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

/**
 * Parses file text as JSON (for `.json` files) or YAML (anything else; YAML
 * also reads JSON) and checks that the top level is a mapping.
 */
export function parseConfigText(
  text: string,
  path: string,
): Record<string, unknown> {
  let data: unknown;
  try {
    data = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const format = path.endsWith(".json") ? "JSON" : "YAML";
    throw new ConfigFileError(
      `${path} is not valid ${format}: ${(error as Error).message}`,
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigFileError(
      `${path} must contain a mapping of keys to values at the top level`,
    );
  }
  return data as Record<string, unknown>;
}

/**
 * Flattens a mapping into entries, opening objects `depth` levels deep.
 *
 * @example
 * ```ts
 * import { flattenConfig } from "./config_file.ts";
 * flattenConfig({ a: { b: 1, c: [2] } }, 2); // { "a.b": 1, "a.c": [2] }
 * ```
 */
export function flattenConfig(
  data: Record<string, unknown>,
  depth = 1,
  prefix = "",
): Record<string, unknown> {
  const entries: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isObject = typeof value === "object" && value !== null &&
      !Array.isArray(value) && Object.keys(value).length > 0;
    if (depth > 1 && isObject) {
      Object.assign(
        entries,
        flattenConfig(value as Record<string, unknown>, depth - 1, path),
      );
    } else {
      entries[path] = value;
    }
  }
  return entries;
}
