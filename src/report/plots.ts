import { CurvePoint } from '../eval/sweep';
import { ChartSeries, renderLineChart } from './svg-chart';

export interface AccuracyCostSeries {
  name: string;
  points: readonly CurvePoint[];
  color?: string;
  dashed?: boolean;
}

export interface AccuracyCostChartOptions {
  title?: string;
  series: readonly AccuracyCostSeries[];
  /** The plain backbone, drawn as one marker (by default at 100% cost). */
  base?: { accuracy: number; costFraction?: number; name?: string };
  /** Accuracy axis range in percent; by default fitted to the data. */
  yDomain?: readonly [number, number];
  /** Cost axis range in percent of the base cost; by default fitted to the data. */
  xDomain?: readonly [number, number];
  width?: number;
  height?: number;
}

/** Accuracy (%) against mean inference cost (% of the base network), one line per method. */
export function accuracyCostChartSvg(options: AccuracyCostChartOptions): string {
  const { title = 'Accuracy vs. inference cost', base } = options;
  const series: ChartSeries[] = options.series.map((s) => ({
    name: s.name,
    color: s.color,
    dashed: s.dashed,
    points: s.points.map((p) => ({ x: p.costFraction * 100, y: p.accuracy })),
  }));
  if (base) {
    series.push({
      name: base.name ?? 'Base network',
      style: 'marker',
      color: '#222222',
      points: [{ x: (base.costFraction ?? 1) * 100, y: base.accuracy }],
    });
  }
  return renderLineChart({
    title,
    xLabel: 'Inference cost (% of base network)',
    yLabel: 'Accuracy (%)',
    series,
    xDomain: options.xDomain,
    yDomain: options.yDomain,
    width: options.width,
    height: options.height,
  });
}

export interface HindsightChartOptions {
  title?: string;
  /** HI per head as fractions in [0, 1]; std draws a band (e.g. over seeds). */
  methods: readonly { name: string; values: readonly number[]; std?: readonly number[]; color?: string }[];
  /** Chance baseline per head (chanceHindsightImprovability), drawn dashed. */
  chance?: readonly number[];
  width?: number;
  height?: number;
}

/** Hindsight Improvability per head (1-based), one line per method plus the chance baseline. */
export function hindsightChartSvg(options: HindsightChartOptions): string {
  const { title = 'Hindsight Improvability per head' } = options;
  const series: ChartSeries[] = options.methods.map((m) => ({
    name: m.name,
    color: m.color,
    points: m.values.map((v, k) => ({ x: k + 1, y: v, err: m.std?.[k] })),
  }));
  if (options.chance) {
    series.push({
      name: 'Chance',
      color: '#7f7f7f',
      dashed: true,
      showPoints: false,
      points: options.chance.map((v, k) => ({ x: k + 1, y: v })),
    });
  }
  const heads = Math.max(1, ...series.map((s) => s.points.length));
  return renderLineChart({
    title,
    xLabel: 'Head (internal classifier)',
    yLabel: 'Hindsight Improvability',
    series,
    xDomain: [1, Math.max(heads, 2)],
    xIntegerTicks: true,
    yDomain: [0, 1],
    width: options.width,
    height: options.height,
  });
}
