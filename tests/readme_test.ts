import assert from "node:assert/strict";
import { settingsTable, tableRows } from "../scripts/settings_table.ts";

Deno.test("README settings table matches lib/config.ts", async () => {
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  const expected = tableRows(
    `<!-- settings-table:start -->\n${settingsTable()}\n<!-- settings-table:end -->`,
  );
  const actual = tableRows(readme);
  assert.ok(expected.length > 30, "the generated table has every setting");
  assert.deepEqual(
    actual,
    expected,
    "run: deno run -RW scripts/settings_table.ts --write && deno fmt README.md",
  );
});

Deno.test("README shows the two set-up commands", async () => {
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  assert.match(readme, /npx -y deno@2 task start/);
  assert.match(readme, /npx -y deno@2 task test/);
  const ci = await Deno.readTextFile(new URL("../.ci/run", import.meta.url));
  assert.match(ci, /deno task test/);
});
