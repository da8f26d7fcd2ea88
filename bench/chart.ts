// A hand-written SVG line chart of tokens/s against concurrency, one line per
// mode. Pure: returns the document as a string.
import type { ModeName, RunResult } from './types.js';

const COLORS: Record<ModeName, string> = {
  engine: '#1f77b4',
  'plaintext-http': '#2ca02c',
  'encrypted-http': '#d62728',
  'transformers-js': '#9467bd',
};

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** Axis maxima: round numbers whose fifths (the grid lines) are round too. */
const NICE = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];

/** The smallest nice axis maximum at or above v. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of NICE) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

function n(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

export interface ChartOptions {
  title?: string;
  width?: number;
  height?: number;
}

/**
 * Concurrency levels are spaced evenly (the sweep is roughly geometric), and
 * the y axis starts at zero so heights compare honestly.
 */
export function renderChart(runs: readonly RunResult[], opts: ChartOptions = {}): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const m = { left: 70, right: 170, top: 40, bottom: 50 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const levels = [...new Set(runs.map((r) => r.concurrency))].sort((a, b) => a - b);
  const finite = runs.map((r) => r.tokens_per_second).filter((v) => Number.isFinite(v));
  const yMax = niceCeil(Math.max(0, ...finite));
  const x = (c: number): number => m.left + (levels.length <= 1 ? pw / 2 : (levels.indexOf(c) / (levels.length - 1)) * pw);
  const y = (v: number): number => m.top + ph - (v / yMax) * ph;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${n(m.left + pw / 2)}" y="22" text-anchor="middle" font-size="15">${escapeXml(opts.title ?? 'tokens/s vs concurrency')}</text>`);
  // Horizontal grid and y labels.
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    parts.push(`<line x1="${m.left}" y1="${n(y(v))}" x2="${m.left + pw}" y2="${n(y(v))}" stroke="#e0e0e0"/>`);
    parts.push(`<text x="${m.left - 8}" y="${n(y(v) + 4)}" text-anchor="end">${escapeXml(String(Math.round(v)))}</text>`);
  }
  for (const c of levels) {
    parts.push(`<line x1="${n(x(c))}" y1="${m.top + ph}" x2="${n(x(c))}" y2="${m.top + ph + 5}" stroke="#333"/>`);
    parts.push(`<text x="${n(x(c))}" y="${m.top + ph + 18}" text-anchor="middle">${c}</text>`);
  }
  parts.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333"/>`);
  parts.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333"/>`);
  parts.push(`<text x="${n(m.left + pw / 2)}" y="${height - 12}" text-anchor="middle">concurrent requests</text>`);
  parts.push(`<text transform="translate(18 ${n(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">tokens/s (aggregate)</text>`);

  const modes = [...new Set(runs.map((r) => r.mode))];
  modes.forEach((mode, i) => {
    const pts = runs
      .filter((r) => r.mode === mode && Number.isFinite(r.tokens_per_second))
      .sort((a, b) => a.concurrency - b.concurrency);
    const color = COLORS[mode] ?? '#000000';
    const safe = escapeXml(mode);
    if (pts.length > 1) {
      const d = pts.map((p) => `${n(x(p.concurrency))},${n(y(p.tokens_per_second))}`).join(' ');
      parts.push(`<polyline class="series" data-mode="${safe}" fill="none" stroke="${color}" stroke-width="2" points="${d}"/>`);
    }
    for (const p of pts) {
      parts.push(`<circle data-mode="${safe}" cx="${n(x(p.concurrency))}" cy="${n(y(p.tokens_per_second))}" r="3.5" fill="${color}"><title>${safe} c=${p.concurrency}: ${p.tokens_per_second} tok/s</title></circle>`);
    }
    const ly = m.top + 10 + i * 20;
    parts.push(`<line x1="${width - m.right + 15}" y1="${ly}" x2="${width - m.right + 40}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${width - m.right + 46}" y="${ly + 4}">${safe}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
