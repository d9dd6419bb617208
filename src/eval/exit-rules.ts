import { HeadSource, HeadStats, toHeadStats } from './head-stats';
import { CostModel, ExitDecisions, OperatingPoint, validateCosts, validateLabels } from './types';

/**
 * Confidence exit (SDN, ZTW): a sample stops at the first head whose max probability is
 * strictly above tau; samples that never pass take the last head's answer.
 * So tau >= 1 sends everything to the last head, and tau < every confidence to the first.
 * tau is rounded to float32 before comparing (see below).
 */
export function confidenceExit(source: HeadSource, options: { tau: number }): ExitDecisions {
  const stats = toHeadStats(source);
  // Compare in the probabilities' own float32 precision, as a float32 tensor would: a stored
  // 0.8 must not count as "above tau = 0.8" just because float32(0.8) > double 0.8.
  const tau = Math.fround(options.tau);
  const last = stats.numHeads - 1;
  const exitHead = new Int32Array(stats.numSamples);
  const prediction = new Int32Array(stats.numSamples);
  for (let i = 0; i < stats.numSamples; i++) {
    let m = 0;
    while (m < last && !(stats.confidence[m][i] > tau)) m++;
    exitHead[i] = m;
    prediction[i] = stats.argmax[m][i];
  }
  return { exitHead, prediction };
}

/**
 * Length of the run of equal answers ending at each head, per sample: [head][sample].
 * Resets to 1 whenever the answer changes (PBEE's patience counter).
 */
export function patienceCounts(stats: HeadStats): Int32Array[] {
  const counts: Int32Array[] = [];
  for (let m = 0; m < stats.numHeads; m++) {
    const c = new Int32Array(stats.numSamples);
    for (let i = 0; i < stats.numSamples; i++) {
      c[i] = m > 0 && stats.argmax[m][i] === stats.argmax[m - 1][i] ? counts[m - 1][i] + 1 : 1;
    }
    counts.push(c);
  }
  return counts;
}

/**
 * Patience exit (PBEE): a sample stops at the first head where its answer has been the same
 * for `patience` consecutive heads (counting this one); otherwise the last head answers.
 * patience 1 exits everything at the first head.
 */
export function patienceExit(source: HeadSource, options: { patience: number }): ExitDecisions {
  const stats = toHeadStats(source);
  const { patience } = options;
  const last = stats.numHeads - 1;
  const exitHead = new Int32Array(stats.numSamples);
  const prediction = new Int32Array(stats.numSamples);
  for (let i = 0; i < stats.numSamples; i++) {
    let count = 0;
    let m = 0;
    for (; m <= last; m++) {
      count = m > 0 && stats.argmax[m][i] === stats.argmax[m - 1][i] ? count + 1 : 1;
      if (count >= patience) break;
    }
    const head = Math.min(m, last);
    exitHead[i] = head;
    prediction[i] = stats.argmax[head][i];
  }
  return { exitHead, prediction };
}

/** Accuracy and mean cost of a set of exit decisions. */
export function scoreExits(
  decisions: ExitDecisions,
  labels: Int32Array,
  costs: CostModel,
): OperatingPoint {
  const n = labels.length;
  if (decisions.exitHead.length !== n || decisions.prediction.length !== n) {
    throw new Error(`decisions cover ${decisions.exitHead.length} samples, labels ${n}`);
  }
  let correct = 0;
  let totalCost = 0;
  for (let i = 0; i < n; i++) {
    if (decisions.prediction[i] === labels[i]) correct++;
    totalCost += costs.exitCosts[decisions.exitHead[i]];
  }
  const meanCost = n > 0 ? totalCost / n : NaN;
  return {
    accuracy: n > 0 ? (100 * correct) / n : NaN,
    meanCost,
    costFraction: meanCost / costs.baseCost,
  };
}

/** Fraction of samples exiting at each head. */
export function exitHistogram(decisions: ExitDecisions, numHeads: number): number[] {
  const counts = new Array<number>(numHeads).fill(0);
  for (const m of decisions.exitHead) counts[m]++;
  const n = decisions.exitHead.length;
  return counts.map((c) => (n > 0 ? c / n : NaN));
}

/** Convenience: run a rule on a labelled split and score it in one call. */
export function evaluateExitRule(
  source: HeadSource,
  labels: Int32Array,
  costs: CostModel,
  rule: { tau: number } | { patience: number },
): OperatingPoint {
  const stats = toHeadStats(source);
  validateLabels(labels, stats);
  validateCosts(costs, stats.numHeads);
  const decisions = 'tau' in rule ? confidenceExit(stats, rule) : patienceExit(stats, rule);
  return scoreExits(decisions, labels, costs);
}
