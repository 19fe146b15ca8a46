/**
 * Prints the README's settings table from `lib/config.ts`, so the table
 * cannot drift from the code. `tests/readme_test.ts` checks that the README
 * contains exactly this output.
 *
 * ```sh
 * deno run scripts/settings_table.ts
 * ```
 *
 * @module
 */

import {
  envName,
  flagName,
  PRESETS,
  type SettingName,
  SETTINGS,
} from "../lib/config.ts";

/** Returns the settings table as Markdown. */
export function settingsTable(): string {
  const rows = [
    "| setting | flag / environment variable | default (lan) | local | wan | meaning |",
    "|---|---|---|---|---|---|",
  ];
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const key = name as SettingName;
    const show = (value: unknown) =>
      value === undefined || value === ""
        ? ""
        : Array.isArray(value)
        ? value.join(",")
        : String(value);
    rows.push(
      `| \`${name}\` | \`--${flagName(key)}\` / \`${envName(key)}\` | ${
        show(spec.default)
      } | ${show(PRESETS.local[key])} | ${show(PRESETS.wan[key])} | ${
        spec.help.replaceAll("|", "\\|")
      } |`,
    );
  }
  return rows.join("\n");
}

if (import.meta.main) console.log(settingsTable());
