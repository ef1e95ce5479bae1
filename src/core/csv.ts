/**
 * CSV for people who open it in a spreadsheet (ledger export, platform lists, the bench's time
 * series). Fields are quoted per RFC 4180 (a comma, a double quote, CR or LF inside: the field in
 * double quotes, each double quote doubled); rows end with LF, as the CSV this project has always
 * written (RFC 4180 names CRLF; every spreadsheet and CSV reader takes either).
 *
 * Formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell that begins with `=`, `+`,
 * `-` or `@` (tab and carriage return let such a cell slip past naive checks) as a formula, so a
 * member id like `=HYPERLINK(...)` would run on the operator's machine. Such a text cell is written
 * with a `'` in front, which spreadsheets show as text and do not evaluate. Numbers are never
 * guarded: a number cell (typed as a number, or text that is exactly a decimal number such as
 * `-0.500` from `toFixed`) is read as a number, not a formula, so `-1.5` stays `-1.5`.
 */

export type CsvCell = string | number | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;
/** Text a spreadsheet reads as a plain number: optional sign, digits, optional fraction and exponent. */
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One field: empty for null/undefined, numbers and booleans as written, text guarded then quoted. */
export function csvField(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A header line and one line per row, each ending with LF. */
export function toCsv(header: readonly string[], rows: Iterable<readonly CsvCell[]>): string {
  const lines = [header.map(csvField).join(',')];
  for (const row of rows) lines.push(row.map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}
