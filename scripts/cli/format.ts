/** Rows as aligned columns, the first row the header. */
export function columns(rows: Array<Array<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  return cells.map((row) =>
    row.map((
      cell,
      i,
    ) => (/^-?\d[\d,]*$/.test(cell) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ').trimEnd()
  ).join('\n');
}
