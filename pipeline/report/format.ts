// Number and text formatting shared by the markdown report and the plots: one way to print a
// metric, a delta, a count or a class name, so that NaN, undefined or an unescaped `|` never
// reaches a reader.

/** A metric value with 4 decimals; "—" for null, undefined or non-finite values. */
export function fmtMetric(value: number | null | undefined, decimals = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  const text = value.toFixed(decimals);
  // -0.0000 reads as a regression that is not there.
  return /^-0\.0*$/.test(text) ? text.slice(1) : text;
}

/** A signed delta: +0.0123 / -0.0123 / 0.0000. */
export function fmtSigned(value: number | null | undefined, decimals = 4): string {
  const text = fmtMetric(value, decimals);
  if (text === '—' || text.startsWith('-') || /^0\.0*$/.test(text)) return text;
  return `+${text}`;
}

/** A count as an integer. */
export function fmtCount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return String(Math.round(value));
}

/** A p-value: 4 decimals, or "< 0.0001". */
export function fmtP(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (value < 0.0001) return '< 0.0001';
  return value.toFixed(4);
}

/** A share as a percentage with one decimal. */
export function fmtPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${(value * 100).toFixed(1)}%`;
}

/** Text for HTML or XML (element content and quoted attributes). */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Text from the data (class names, slice values, gate names) for a GitHub markdown table cell:
 * HTML-escaped (GitHub renders inline HTML), markdown punctuation backslash-escaped, `|` escaped
 * so the table keeps its columns, and newlines folded.
 */
export function escapeMd(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n|\r/g, ' ')
    .replace(/([\\`*_[\]|~])/g, '\\$1');
}

/** A markdown table; cells are used as given (escape data with escapeMd first). */
export function mdTable(header: string[], rows: string[][], align?: ('l' | 'r' | 'c')[]): string {
  const sep = header.map((_, i) => {
    const a = align?.[i] ?? 'l';
    return a === 'r' ? '---:' : a === 'c' ? ':---:' : '---';
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(sep), ...rows.map(line)].join('\n');
}

/** A folded section. A blank line after <summary> lets GitHub render the markdown inside. */
export function details(summary: string, body: string, open = false): string {
  return `<details${open ? ' open' : ''}><summary>${summary}</summary>\n\n${body}\n\n</details>`;
}
