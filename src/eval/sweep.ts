import { HeadSource, toHeadStats } from './head-stats';
import { CostModel, validateCosts, validateLabels } from './types';

export type ExitRuleKind = 'confidence' | 'patience';

/**
 * Accuracy and cost for each value of the exit rule's parameter, in parameter order
 * (tau ascending, or patience ascending): cost grows along the arrays.
 */
export interface SweepResult {
  rule: ExitRuleKind;
  /** tau values for 'confidence', patience values for 'patience'. */
  params: number[];
  /** Percent correct at each param. */
  accuracy: number[];
  meanCost: number[];
  /** meanCost / baseCost. */
  costFraction: number[];
  /** The 100% reference the fractions are relative to. */
  baseCost: number;
}

/**
 * The reference's threshold grid: `count` values spaced linearly from the smallest max
 * probability seen (any head, any sample) up to exactly 1, where every sample reaches the
 * last head.
 */
export function thresholdGrid(source: HeadSource, options: { count?: number } = {}): number[] {
  const { count = 1000 } = options;
  if (!Number.isInteger(count) || count < 2) throw new Error(`count must be >= 2, got ${count}`);
  const stats = toHeadStats(source);
  let lowest = 1;
  for (const conf of stats.confidence) for (const c of conf) if (c < lowest) lowest = c;
  const grid = new Array<number>(count);
  for (let j = 0; j < count; j++) grid[j] = lowest + ((1 - lowest) * j) / (count - 1);
  grid[count - 1] = 1; // exact, whatever the rounding above did
  return grid;
}

/**
 * Confidence-exit accuracy and cost for every tau, in O(N*M*log T) rather than O(N*M*T).
 *
 * Why it works: a sample exits at the first head whose prefix maximum of confidence exceeds
 * tau. Only heads that raise the prefix maximum ("records") can ever be exit heads, and as
 * tau rises past a record's confidence the sample moves on to the next record (or to the last
 * head after the final record). Each move is an event at one tau index; events go into
 * difference arrays (per-head exit counts, correct count) and a prefix sum over tau
 * recovers every operating point.
 */
export function confidenceSweep(
  source: HeadSource,
  labels: Int32Array,
  costs: CostModel,
  options: { taus?: readonly number[]; count?: number } = {},
): SweepResult {
  const stats = toHeadStats(source);
  validateLabels(labels, stats);
  validateCosts(costs, stats.numHeads);
  const taus = options.taus ? [...options.taus] : thresholdGrid(stats, { count: options.count });
  assertAscending(taus, 'taus');

  const M = stats.numHeads;
  const N = stats.numSamples;
  const T = taus.length;
  const last = M - 1;
  const exitDiff = new Int32Array(T * M);
  const correctDiff = new Int32Array(T);
  const correctAt = (m: number, i: number) => (stats.argmax[m][i] === labels[i] ? 1 : 0);

  // Below every tau's reach every sample sits at head 0; events start from there.
  let correctAtStart = 0;
  for (let i = 0; i < N; i++) correctAtStart += correctAt(0, i);

  // Same float32 comparison as confidenceExit; rounding is monotone, so order is kept.
  const taus32 = taus.map(Math.fround);
  const moveAt = (value: number, i: number, from: number, to: number) => {
    const j = lowerBound(taus32, value); // first tau >= value no longer lets `from` exit
    if (j >= T) return;
    exitDiff[j * M + from]--;
    exitDiff[j * M + to]++;
    correctDiff[j] += correctAt(to, i) - correctAt(from, i);
  };

  for (let i = 0; i < N; i++) {
    let record = 0;
    let recordConf = stats.confidence[0][i];
    for (let m = 1; m < M; m++) {
      const c = stats.confidence[m][i];
      if (c > recordConf) {
        moveAt(recordConf, i, record, m);
        record = m;
        recordConf = c;
      }
    }
    if (record !== last) moveAt(recordConf, i, record, last);
  }

  const exitCounts = new Int32Array(M);
  exitCounts[0] = N;
  let correct = correctAtStart;
  const accuracy = new Array<number>(T);
  const meanCost = new Array<number>(T);
  for (let j = 0; j < T; j++) {
    for (let m = 0; m < M; m++) exitCounts[m] += exitDiff[j * M + m];
    correct += correctDiff[j];
    accuracy[j] = N > 0 ? (100 * correct) / N : NaN;
    meanCost[j] = histogramMeanCost(exitCounts, costs.exitCosts, N);
  }
  return {
    rule: 'confidence',
    params: taus,
    accuracy,
    meanCost,
    costFraction: meanCost.map((c) => c / costs.baseCost),
    baseCost: costs.baseCost,
  };
}

/**
 * Patience-exit accuracy and cost for each patience value (default 1..M). Each sample's
 * run-length counter grows by one per head, so the first head where it reaches t is recorded
 * once per t, and all patience values come out of one pass over the heads.
 */
export function patienceSweep(
  source: HeadSource,
  labels: Int32Array,
  costs: CostModel,
  options: { patiences?: readonly number[] } = {},
): SweepResult {
  const stats = toHeadStats(source);
  validateLabels(labels, stats);
  validateCosts(costs, stats.numHeads);
  const M = stats.numHeads;
  const N = stats.numSamples;
  const last = M - 1;
  const patiences = options.patiences
    ? [...options.patiences]
    : Array.from({ length: M }, (_, k) => k + 1);
  assertAscending(patiences, 'patiences');
  for (const t of patiences) {
    if (!Number.isInteger(t) || t < 1) throw new Error(`patience must be an integer >= 1, got ${t}`);
  }

  const P = patiences.length;
  const exitCounts = patiences.map(() => new Int32Array(M));
  const correct = new Array<number>(P).fill(0);
  // firstReach[t] = first head where the run of equal answers reaches length t.
  const firstReach = new Int32Array(M + 1);
  for (let i = 0; i < N; i++) {
    let count = 0;
    let longest = 0;
    for (let m = 0; m < M; m++) {
      count = m > 0 && stats.argmax[m][i] === stats.argmax[m - 1][i] ? count + 1 : 1;
      if (count > longest) {
        longest = count;
        firstReach[count] = m;
      }
    }
    for (let k = 0; k < P; k++) {
      const t = patiences[k];
      const head = t <= longest ? firstReach[t] : last;
      exitCounts[k][head]++;
      if (stats.argmax[head][i] === labels[i]) correct[k]++;
    }
  }
  const meanCost = exitCounts.map((h) => histogramMeanCost(h, costs.exitCosts, N));
  return {
    rule: 'patience',
    params: patiences,
    accuracy: correct.map((c) => (N > 0 ? (100 * c) / N : NaN)),
    meanCost,
    costFraction: meanCost.map((c) => c / costs.baseCost),
    baseCost: costs.baseCost,
  };
}

/** One sweep call for either rule, with the rule's default parameter grid. */
export function sweepExitRule(
  rule: ExitRuleKind,
  source: HeadSource,
  labels: Int32Array,
  costs: CostModel,
  options: { params?: readonly number[]; count?: number } = {},
): SweepResult {
  return rule === 'confidence'
    ? confidenceSweep(source, labels, costs, { taus: options.params, count: options.count })
    : patienceSweep(source, labels, costs, { patiences: options.params });
}

function histogramMeanCost(counts: Int32Array, exitCosts: readonly number[], n: number): number {
  if (n === 0) return NaN;
  let total = 0;
  for (let m = 0; m < counts.length; m++) total += counts[m] * exitCosts[m];
  return total / n;
}

/** First index j with values[j] >= x (values ascending); values.length if none. */
function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function assertAscending(values: readonly number[], name: string): void {
  for (let j = 1; j < values.length; j++) {
    if (!(values[j] >= values[j - 1])) throw new Error(`${name} must be ascending (index ${j})`);
  }
}

/** One point of an accuracy-versus-cost curve. */
export interface CurvePoint {
  costFraction: number;
  accuracy: number;
}

/**
 * The sweep as a curve for plotting: neighbouring params often give the same outcome (most
 * of the 1000 taus move no sample), so repeated points are dropped.
 */
export function sweepCurve(sweep: SweepResult): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (let j = 0; j < sweep.params.length; j++) {
    const point = { costFraction: sweep.costFraction[j], accuracy: sweep.accuracy[j] };
    const previous = points[points.length - 1];
    if (
      previous &&
      previous.costFraction === point.costFraction &&
      previous.accuracy === point.accuracy
    ) {
      continue;
    }
    points.push(point);
  }
  return points;
}
