import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AtChannel, AtCommandError, type AtResponse } from '../../src/comms/lte/at-channel.js';
import { parseCereg, parseCsq, parseQcsq } from '../../src/comms/lte/modem.js';
import { ErrorCode, P2PError } from '../../src/core/errors.js';
import { fuzz } from '../helpers/fuzz.js';

/**
 * Fuzzing of the LTE modem's AT side (docs/fuzzing.md): the response parsers (+CSQ, +CEREG/+CREG,
 * +QCSQ) on arbitrary lines and on lines written from known values, and the AT channel fed whole
 * conversations (echo, information lines, URCs, OK / ERROR / +CME ERROR) cut into arbitrary byte
 * chunks, and garbage.
 */

const REGISTRATIONS = ['home', 'roaming', 'searching', 'denied', 'not-registered', 'unknown'];
const STAT: Record<number, string> = {
  0: 'not-registered',
  1: 'home',
  2: 'searching',
  3: 'denied',
  4: 'unknown',
  5: 'roaming',
};

const atText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc
    .tuple(
      fc.constantFrom('+CSQ:', '+CEREG:', '+CREG:', '+CGREG:', '+QCSQ:', '+CSQ: ', '+CEREG: ', '+QCSQ: "LTE",'),
      fc.array(
        fc.oneof(
          fc.stringMatching(/^-?\d{1,3}$/),
          fc.stringMatching(/^\d{200,400}$/),
          fc.constantFrom('', ' ', ',', '"', '"LTE"', '"NOSERVICE"', '1E0', '0x1', 'A', '99', '-', '1e1', '"1A2B"'),
        ),
        { maxLength: 6 },
      ),
    )
    .map(([head, fields]) => head + fields.join(',')),
);

function isFiniteOrAbsent(v: unknown): boolean {
  return v === undefined || (typeof v === 'number' && Number.isFinite(v));
}

describe('fuzz: AT response parsers (src/comms/lte/modem.ts)', () => {
  it('any line: plausible values (finite numbers, a known registration), never a throw', () => {
    fc.assert(
      fc.property(atText, fc.boolean(), (line, urc) => {
        const csq = parseCsq(line);
        if (!isFiniteOrAbsent(csq.rssiDbm) || !isFiniteOrAbsent(csq.ber)) throw new Error(`+CSQ ${line}`);
        const reg = parseCereg(line, urc);
        if (reg !== undefined && !REGISTRATIONS.includes(reg)) throw new Error(`+CEREG ${line}: ${reg}`);
        const q = parseQcsq(line);
        for (const v of [q.rssiDbm, q.rsrpDbm, q.sinrDb, q.rsrqDb])
          if (!isFiniteOrAbsent(v)) throw new Error(`+QCSQ ${line}: ${String(v)}`);
      }),
      fuzz(),
    );
  });

  it('a registration status that is not a decimal number is unknown, never read as another', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', ' ', '1E0', '2e0', 'A', '"1"', '0x1', '1.0', ' 5 5'),
        fc.boolean(),
        (stat, urc) => {
          const line = urc ? `+CEREG: ${stat},"1A2B"` : `+CEREG: 2,${stat}`;
          expect(parseCereg(line, urc) ?? 'unknown').toBe('unknown');
        },
      ),
      fuzz(0.01),
    );
  });

  it('lines written from values read back as those values', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 11 }),
        fc.record({
          rssi: fc.integer({ min: -140, max: 0 }),
          rsrp: fc.integer({ min: -150, max: 0 }),
          sinr: fc.integer({ min: 0, max: 250 }),
          rsrq: fc.integer({ min: -30, max: 0 }),
        }),
        fc.constantFrom('+CEREG', '+CREG', '+CGREG'),
        (rssi, ber, n, stat, q, cmd) => {
          expect(parseCsq(`+CSQ: ${rssi},${ber}`)).toEqual({
            ...(rssi <= 31 ? { rssiDbm: -113 + 2 * rssi } : {}),
            ...(ber <= 7 ? { ber } : {}),
          });
          const want = STAT[stat] ?? 'unknown';
          expect(parseCereg(`${cmd}: ${n},${stat},"1A2B","01A2D001",7`, false)).toBe(want);
          expect(parseCereg(`${cmd}: ${stat},"1A2B","01A2D001",7`, true)).toBe(want);
          expect(parseCereg(`${cmd}: ${stat}`, true)).toBe(want);
          expect(parseQcsq(`+QCSQ: "LTE",${q.rssi},${q.rsrp},${q.sinr},${q.rsrq}`)).toEqual({
            rat: 'LTE',
            rssiDbm: q.rssi,
            rsrpDbm: q.rsrp,
            sinrDb: q.sinr / 5 - 20,
            rsrqDb: q.rsrq,
          });
        },
      ),
      fuzz(0.3),
    );
  });
});

/** The modem end of the AT port: records what the channel writes; the test pushes the modem's bytes. */
class FakePort extends EventEmitter {
  written: string[] = [];
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
}

const URCS = [
  '+CEREG: 1',
  '+CEREG: 5,"1A2B","01A2D001",7',
  'RDY',
  'POWERED DOWN',
  '+QIURC: "pdpdeact",1',
  '+CPIN: READY',
];
const FINALS = ['OK', 'ERROR', '+CME ERROR: 30', '+CME ERROR: SIM not inserted', '+CMS ERROR: 500', 'NO CARRIER'];

const infoText = fc.string({
  unit: fc.constantFrom('a', 'Z', '0', ' ', ',', '"', ':', 'é', '✓', '😀', '-', '+'),
  maxLength: 20,
});
const exchange = fc.record({
  prefixed: fc.boolean(),
  info: fc.array(infoText, { maxLength: 3 }),
  urcs: fc.array(fc.constantFrom(...URCS), { maxLength: 2 }),
  echo: fc.boolean(),
  final: fc.constantFrom(...FINALS),
});
const conversation = fc.record({
  exchanges: fc.array(exchange, { minLength: 1, maxLength: 4 }),
  eol: fc.constantFrom('\r\n', '\n', '\r'),
  cuts: fc.array(fc.nat(), { maxLength: 12 }),
});

describe('fuzz: AT channel line splitting and results (src/comms/lte/at-channel.ts)', () => {
  it('a conversation cut into arbitrary byte chunks: every command gets its lines or its error, every URC is emitted', async () => {
    await fc.assert(
      fc.asyncProperty(conversation, async ({ exchanges, eol, cuts }) => {
        const port = new FakePort();
        const channel = new AtChannel(port as unknown as Duplex);
        const urcs: string[] = [];
        channel.on('urc', (line) => urcs.push(line));
        const results = exchanges.map((x, i) =>
          channel.send({ command: `AT+Q${i}`, ...(x.prefixed ? { prefix: `+Q${i}:` } : {}), timeoutMs: 10_000 }).then(
            (r: AtResponse) => r,
            (e: unknown) => e,
          ),
        );
        let text = '';
        const wantUrcs: string[] = [];
        for (const [i, x] of exchanges.entries()) {
          if (x.echo) text += `AT+Q${i}${eol}`;
          for (const [k, info] of x.info.entries()) {
            text += `${eol}${x.prefixed ? `+Q${i}: ` : `Q${i}.`}${info}${eol}`;
            if (k === 0)
              for (const u of x.urcs) {
                text += `${eol}${u}${eol}`;
                wantUrcs.push(u);
              }
          }
          if (x.info.length === 0)
            for (const u of x.urcs) {
              text += `${eol}${u}${eol}`;
              wantUrcs.push(u);
            }
          text += `${eol}${x.final}${eol}`;
        }
        const bytes = Buffer.from(text, 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((p, q) => p - q);
        let from = 0;
        for (const to of [...at, bytes.length]) {
          port.emit('data', bytes.subarray(from, to));
          from = to;
        }
        const got = await Promise.all(results);
        for (const [i, x] of exchanges.entries()) {
          const r = got[i];
          if (x.final === 'OK') {
            const want = x.info
              .map((info) => `${x.prefixed ? `+Q${i}: ` : `Q${i}.`}${info}`.trim())
              .filter((l) => l.length > 0);
            expect(r).toEqual({ command: `AT+Q${i}`, lines: want });
          } else {
            expect(r).toBeInstanceOf(AtCommandError);
            const e = r as AtCommandError;
            expect(e.code).toBe(ErrorCode.comms);
            expect(e.result).toBe(x.final);
            expect(e.cmeError).toBe(/ERROR: \d+$/.test(x.final) ? Number(x.final.split(': ')[1]) : undefined);
          }
        }
        expect(urcs).toEqual(wantUrcs);
        expect(port.written).toEqual(exchanges.map((_, i) => `AT+Q${i}\r`));
        channel.close();
      }),
      fuzz(),
    );
  });

  it('garbage from the port (no line ends, binary, a wrong baud rate): no throw, the buffer stays bounded, close() fails the command cleanly', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 64 }),
            fc.nat({ max: 20_000 }).map((n) => new Uint8Array(n).fill(0x41)),
          ),
          { maxLength: 8 },
        ),
        async (chunks) => {
          const port = new FakePort();
          const channel = new AtChannel(port as unknown as Duplex);
          channel.on('urc', () => {});
          const pending = channel.send({ command: 'AT+CSQ', prefix: '+CSQ:', timeoutMs: 10_000 }).catch((e) => e);
          for (const c of chunks) port.emit('data', Buffer.from(c));
          const buffered = (channel as unknown as { buffer: string }).buffer.length;
          if (buffered > 4096) throw new Error(`${buffered} characters buffered without a line end`);
          channel.close();
          const r = await pending;
          if (!(r instanceof P2PError) && !Array.isArray((r as AtResponse).lines)) throw new Error('neither');
        },
      ),
      fuzz(0.3),
    );
  });

  it('a command the modem never answers fails with a comms error after its timeout', async () => {
    const channel = new AtChannel(new FakePort() as unknown as Duplex);
    const r = await channel.send({ command: 'AT+CFUN=1', timeoutMs: 5 }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(P2PError);
    expect((r as P2PError).message).toContain('no answer to AT+CFUN=1');
  });
});
