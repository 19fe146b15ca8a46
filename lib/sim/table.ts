/**
 * Plain-text tables for the terminal.
 *
 * @module
 */

/** Formats rows under a header, with columns padded to equal width. */
export function formatTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const all = [columns, ...rows];
  const widths = columns.map((_, column) =>
    Math.max(...all.map((row) => (row[column] ?? "").length))
  );
  const line = (row: readonly string[]) =>
    row.map((cell, column) => cell.padStart(widths[column]!)).join("  ");
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  return [line(columns), rule, ...rows.map(line)].join("\n");
}
