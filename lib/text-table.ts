/**
 * A table of plain text for a terminal: columns padded to their widest cell,
 * two spaces apart; with `rule`, a line of dashes under the header.
 */
export function textTable(head: string[], lines: string[][], opts: { rule?: boolean } = {}): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const rule = opts.rule ? [fmt(widths.map((w) => '-'.repeat(w)))] : [];
  return [fmt(head), ...rule, ...lines.map(fmt)].join('\n');
}
