/**
 * A small, dependency-free SVG line-chart generator.
 *
 * Why not vega-lite + vega (both installed): vega 6 is ESM with top-level await, so the
 * CommonJS build cannot require() it, and TypeScript's CommonJS output rewrites `import()`
 * into require(); reaching it needs an eval'd dynamic import, and rendering is async. The
 * charts here are simple (a few lines, a marker, a band), so a ~200-line generator gives
 * deterministic, synchronous output that tests can inspect and resvg can rasterise.
 */
import { escapeXml } from './format';

export interface ChartPoint {
  x: number;
  y: number;
  /** Half-width of an uncertainty band around y (e.g. one std). */
  err?: number;
}

export interface ChartSeries {
  name: string;
  points: readonly ChartPoint[];
  color?: string;
  dashed?: boolean;
  /** 'line': connected points; 'marker': unconnected large diamonds (e.g. the base network). */
  style?: 'line' | 'marker';
  /** Draw a dot at each point of a line; default: when it has at most 40 points. */
  showPoints?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  width?: number;
  height?: number;
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** Only whole-number ticks on x (e.g. head indices). */
  xIntegerTicks?: boolean;
  fontFamily?: string;
}

/** Tableau 10: distinguishable, and readable in grey-scale print order. */
export const PALETTE = [
  '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac',
];

const FONT_SIZE = 12;

export function renderLineChart(options: LineChartOptions): string {
  const {
    title,
    xLabel,
    yLabel,
    series,
    width = 720,
    height = 440,
    xIntegerTicks = false,
    fontFamily = 'DejaVu Sans, Helvetica, Arial, sans-serif',
  } = options;
  const colors = series.map((s, k) => s.color ?? PALETTE[k % PALETTE.length]);

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    for (const p of s.points) {
      if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
      xs.push(p.x);
      ys.push(p.y - (p.err ?? 0), p.y + (p.err ?? 0));
    }
  }
  const xAxis = axisScale(options.xDomain ?? extent(xs), { integer: xIntegerTicks, nice: !options.xDomain });
  const yAxis = axisScale(options.yDomain ?? extent(ys), { integer: false, nice: !options.yDomain });

  const legendWidth = Math.max(...series.map((s) => textWidth(s.name)), 40) + 44;
  const margin = { top: 46, right: legendWidth + 16, bottom: 56, left: 70 };
  const plotW = Math.max(width - margin.left - margin.right, 50);
  const plotH = Math.max(height - margin.top - margin.bottom, 50);
  const sx = (x: number) => margin.left + ((x - xAxis.min) / (xAxis.max - xAxis.min)) * plotW;
  const sy = (y: number) => margin.top + plotH - ((y - yAxis.min) / (yAxis.max - yAxis.min)) * plotH;
  const fingerprint = series.map((s) => `${s.name}:${s.points.map((p) => `${p.x},${p.y}`).join(';')}`);
  const clipId = `clip-${hashText(title + '|' + fingerprint.join('|'))}`;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="${escapeXml(fontFamily)}" font-size="${FONT_SIZE}">`,
  );
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    // A few pixels beyond the frame, so dots sitting on the domain's edge are drawn whole.
    `<defs><clipPath id="${clipId}"><rect x="${f(margin.left - 5)}" y="${f(margin.top - 5)}" ` +
      `width="${f(plotW + 10)}" height="${f(plotH + 10)}"/></clipPath></defs>`,
  );

  // Grid and ticks.
  for (const t of xAxis.ticks) {
    const x = f(sx(t));
    out.push(`<line x1="${x}" y1="${f(margin.top)}" x2="${x}" y2="${f(margin.top + plotH)}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${x}" y1="${f(margin.top + plotH)}" x2="${x}" y2="${f(margin.top + plotH + 5)}" stroke="#333"/>`);
    out.push(
      `<text x="${x}" y="${f(margin.top + plotH + 18)}" text-anchor="middle" fill="#333">${xAxis.format(t)}</text>`,
    );
  }
  for (const t of yAxis.ticks) {
    const y = f(sy(t));
    out.push(`<line x1="${f(margin.left)}" y1="${y}" x2="${f(margin.left + plotW)}" y2="${y}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${f(margin.left - 5)}" y1="${y}" x2="${f(margin.left)}" y2="${y}" stroke="#333"/>`);
    out.push(
      `<text x="${f(margin.left - 8)}" y="${f(sy(t) + 4)}" text-anchor="end" fill="#333">${yAxis.format(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${f(margin.left)}" y="${f(margin.top)}" width="${f(plotW)}" height="${f(plotH)}" ` +
      `fill="none" stroke="#333"/>`,
  );

  // Data: bands first so lines stay on top.
  out.push(`<g clip-path="url(#${clipId})">`);
  series.forEach((s, k) => {
    const withErr = s.points.filter((p) => p.err !== undefined && finitePoint(p));
    if ((s.style ?? 'line') === 'line' && withErr.length > 1) {
      const upper = withErr.map((p) => `${f(sx(p.x))},${f(sy(p.y + (p.err ?? 0)))}`);
      const lower = withErr.map((p) => `${f(sx(p.x))},${f(sy(p.y - (p.err ?? 0)))}`).reverse();
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${colors[k]}" fill-opacity="0.15"/>`);
    }
  });
  series.forEach((s, k) => {
    const color = colors[k];
    if (s.style === 'marker') {
      for (const p of s.points.filter(finitePoint)) out.push(diamond(sx(p.x), sy(p.y), 7, color));
      return;
    }
    const d = linePath(s.points, sx, sy);
    if (d) {
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"` +
          `${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    if (s.showPoints ?? s.points.length <= 40) {
      for (const p of s.points.filter(finitePoint)) {
        out.push(`<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3" fill="${color}"/>`);
      }
    }
  });
  out.push('</g>');

  // Titles.
  out.push(
    `<text x="${f(width / 2)}" y="26" text-anchor="middle" font-size="16" font-weight="bold" fill="#111">` +
      `${escapeXml(title)}</text>`,
  );
  out.push(
    `<text x="${f(margin.left + plotW / 2)}" y="${f(height - 14)}" text-anchor="middle" font-size="13" fill="#111">` +
      `${escapeXml(xLabel)}</text>`,
  );
  const yMid = margin.top + plotH / 2;
  out.push(
    `<text x="18" y="${f(yMid)}" text-anchor="middle" font-size="13" fill="#111" ` +
      `transform="rotate(-90 18 ${f(yMid)})">${escapeXml(yLabel)}</text>`,
  );

  // Legend.
  const lx = margin.left + plotW + 16;
  series.forEach((s, k) => {
    const y = margin.top + 10 + k * 22;
    const color = colors[k];
    if (s.style === 'marker') {
      out.push(diamond(lx + 14, y, 6, color));
    } else {
      out.push(
        `<line x1="${f(lx)}" y1="${f(y)}" x2="${f(lx + 28)}" y2="${f(y)}" stroke="${color}" stroke-width="2"` +
          `${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    out.push(`<text x="${f(lx + 36)}" y="${f(y + 4)}" fill="#111">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

interface AxisScale {
  min: number;
  max: number;
  ticks: number[];
  format: (v: number) => string;
}

/** Domain rounded out to whole tick steps (when nice) and about six ticks inside it. */
export function axisScale(
  domain: readonly [number, number],
  options: { integer?: boolean; nice?: boolean; count?: number } = {},
): AxisScale {
  const { integer = false, nice = true, count = 6 } = options;
  let [lo, hi] = domain;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  let step = niceStep((hi - lo) / count);
  if (integer) step = Math.max(1, Math.round(step));
  if (nice) {
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
  }
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) ticks.push(+(k * step).toPrecision(12));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { min: lo, max: hi, ticks, format: (v) => v.toFixed(decimals) };
}

function niceStep(raw: number): number {
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const normalised = raw / magnitude;
  const factor = normalised < 1.5 ? 1 : normalised < 3 ? 2 : normalised < 7 ? 5 : 10;
  return factor * magnitude;
}

function extent(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  return [Math.min(...values), Math.max(...values)];
}

function finitePoint(p: ChartPoint): boolean {
  return Number.isFinite(p.x) && Number.isFinite(p.y);
}

/** Path through the points; a non-finite point breaks the line rather than bridging it. */
function linePath(
  points: readonly ChartPoint[],
  sx: (x: number) => number,
  sy: (y: number) => number,
): string {
  const parts: string[] = [];
  let pen = false;
  for (const p of points) {
    if (!finitePoint(p)) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${f(sx(p.x))} ${f(sy(p.y))}`);
    pen = true;
  }
  return parts.join(' ');
}

function diamond(cx: number, cy: number, r: number, color: string): string {
  return (
    `<path d="M${f(cx)} ${f(cy - r)} L${f(cx + r)} ${f(cy)} L${f(cx)} ${f(cy + r)} L${f(cx - r)} ${f(cy)} Z" ` +
    `fill="${color}" stroke="#111" stroke-width="1"/>`
  );
}

/** Rough width of a label in the chart font (DejaVu Sans averages about 0.6 em). */
function textWidth(text: string): number {
  return text.length * FONT_SIZE * 0.6;
}

function f(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/** Short stable id, so several charts inlined in one page do not share clip-path ids. */
function hashText(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}
