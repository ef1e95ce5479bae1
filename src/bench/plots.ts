/**
 * Line charts as standalone SVG files for the bench report (voltage envelope over the day, prices per
 * MG trader, curtailment, messages per second). Pure: series in, SVG text out; no dependencies, so the
 * files open in any browser and diff cleanly.
 */
export interface Series {
  label: string;
  points: { x: number; y: number }[];
  /** Drawn dashed (limits, baselines). */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Horizontal reference lines, e.g. voltage limits. */
  limits?: { y: number; label: string }[];
  width?: number;
  height?: number;
}

const COLOURS = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#455a64'];

const escapeXml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

/** About five round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const label = (v: number): string =>
  Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));

export function lineChartSvg(series: readonly Series[], o: ChartOptions): string {
  const width = o.width ?? 720;
  const height = o.height ?? 320;
  const m = { left: 64, right: 150, top: 34, bottom: 44 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const points = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = [...points.map((p) => p.y), ...(o.limits ?? []).map((l) => l.y)];
  const xs = points.map((p) => p.x);
  let [yLo, yHi] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (yHi - yLo < 1e-9) [yLo, yHi] = [yLo - 0.5 * (Math.abs(yLo) || 1) * 0.01, yHi + 0.5 * (Math.abs(yHi) || 1) * 0.01];
  const pad = (yHi - yLo) * 0.05;
  yLo -= pad;
  yHi += pad;
  const [xLo, xHi] = xs.length
    ? [Math.min(...xs), Math.max(...xs) > Math.min(...xs) ? Math.max(...xs) : Math.min(...xs) + 1]
    : [0, 1];
  const sx = (x: number) => m.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const sy = (y: number) => m.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="20" font-size="14" font-weight="600">${escapeXml(o.title)}</text>`,
  ];
  for (const t of niceTicks(yLo, yHi)) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(
      `<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#555">${label(t)}</text>`,
    );
  }
  for (const t of niceTicks(xLo, xHi)) {
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + plotH}" stroke="#f3f3f3"/>`);
    parts.push(`<text x="${x}" y="${m.top + plotH + 16}" text-anchor="middle" fill="#555">${label(t)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${m.left + plotW / 2}" y="${height - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  for (const l of o.limits ?? []) {
    const y = sy(l.y).toFixed(1);
    parts.push(
      `<line x1="${m.left}" x2="${m.left + plotW}" y1="${y}" y2="${y}" stroke="#c62828" stroke-dasharray="5 4"/>`,
    );
    parts.push(
      `<text x="${m.left + plotW + 6}" y="${y}" dominant-baseline="middle" fill="#c62828">${escapeXml(l.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const path = s.points
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
      .map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
      .join(' ');
    if (path) {
      parts.push(
        `<polyline fill="none" stroke="${colour}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="6 3"' : ''} points="${path}"/>`,
      );
    }
    const ly = m.top + 14 + i * 16;
    parts.push(
      `<line x1="${width - m.right + 40}" x2="${width - m.right + 58}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${width - m.right + 62}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
