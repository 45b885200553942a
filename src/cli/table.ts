/**
 * Column alignment with the semantics of Go's text/tabwriter as Docker configures it for tables
 * (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): every tab-terminated cell belongs to a column, a column's width
 * is its widest cell plus the padding (at least the minimum width), the text after a line's last tab is not part
 * of any column and is never padded. A column block is a run of consecutive lines that have a cell in that column,
 * so a line with fewer cells ends the blocks to its right, exactly as in Go.
 */

export interface TabwriterOptions {
  /** Minimal cell width including padding (Docker: 10). */
  minWidth?: number;
  /** Spaces added to the widest cell of a column (Docker: 3). */
  padding?: number;
}

/** Width of a cell as tabwriter counts it: Unicode code points. */
function cellWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Align text whose lines contain tab-terminated cells. Lines are separated by "\n"; the output keeps the input's
 * line structure (a trailing newline stays a trailing newline).
 */
export function tabwrite(text: string, opts: TabwriterOptions = {}): string {
  const minWidth = opts.minWidth ?? 10;
  const padding = opts.padding ?? 3;
  const lines = text.split('\n').map((l) => l.split('\t'));
  const out: string[] = new Array<string>(lines.length).fill('');
  const widths: number[] = [];

  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      let s = '';
      for (let j = 0; j < cells.length; j++) {
        const c = cells[j]!;
        s += c;
        if (j < widths.length && j < cells.length - 1) s += ' '.repeat(Math.max(0, widths[j]! - cellWidth(c)));
      }
      out[i] = s;
    }
  };

  // Go's recursive format(): find blocks of lines that have a cell in column `widths.length`.
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    let start = line0;
    for (let i = line0; i < line1; i++) {
      if (column >= lines[i]!.length - 1) continue;
      writeLines(start, i);
      const blockStart = i;
      let width = minWidth;
      for (; i < line1; i++) {
        const cells = lines[i]!;
        if (column >= cells.length - 1) break;
        width = Math.max(width, cellWidth(cells[column]!) + padding);
      }
      widths.push(width);
      format(blockStart, i);
      widths.pop();
      start = i;
      i--; // the loop's i++ revisits the line that ended the block
    }
    writeLines(start, line1);
  };

  format(0, lines.length);
  return out.join('\n');
}

/**
 * Align rows of cells into columns like Docker's table output: each column as wide as its widest cell plus
 * `padding` (at least `minWidth`), the last cell of each row unpadded, so no trailing spaces. Rows are joined with
 * "\n" and there is no trailing newline (the caller adds it); no rows give "".
 */
export function alignColumns(rows: string[][], padding = 3, minWidth = 10): string {
  return tabwrite(rows.map((r) => r.join('\t')).join('\n'), { padding, minWidth });
}
