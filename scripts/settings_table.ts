/**
 * Prints the README's settings table from `lib/config.ts`, so the table
 * cannot drift from the code. `tests/readme_test.ts` checks that the README
 * contains exactly this output.
 *
 * ```sh
 * deno run scripts/settings_table.ts            # print it
 * deno run -RW scripts/settings_table.ts --write  # put it into README.md
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

const START = "<!-- settings-table:start -->";
const END = "<!-- settings-table:end -->";

/** Returns the table rows between the README markers, cells trimmed. */
export function tableRows(markdown: string): string[][] {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  if (start < 0 || end < start) return [];
  return markdown.slice(start + START.length, end).trim().split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[-\s|]+\|$/.test(line))
    .map((line) =>
      line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim())
    );
}

if (import.meta.main) {
  if (Deno.args.includes("--write")) {
    const path = new URL("../README.md", import.meta.url);
    const readme = await Deno.readTextFile(path);
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    if (start < 0 || end < start) {
      throw new Error(`README.md lacks the ${START} and ${END} markers`);
    }
    await Deno.writeTextFile(
      path,
      readme.slice(0, start + START.length) + "\n\n" + settingsTable() +
        "\n\n" + readme.slice(end),
    );
  } else {
    console.log(settingsTable());
  }
}
