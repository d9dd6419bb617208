import { HeadSource, toHeadStats } from './head-stats';
import { validateLabels } from './types';

/**
 * Hindsight Improvability per head, as fractions in [0, 1]: HI_m is, among the samples head m
 * gets wrong, the fraction that some earlier head got right. HI of the first head is 0, and
 * so is HI of a head that gets nothing wrong (nothing left to improve).
 * For ZTW pass the ensemble outputs q_m; for SDN the independent heads.
 */
export function hindsightImprovability(source: HeadSource, labels: Int32Array): number[] {
  const stats = toHeadStats(source);
  validateLabels(labels, stats);
  const N = stats.numSamples;
  const anyEarlierRight = new Uint8Array(N);
  const result: number[] = [];
  for (let m = 0; m < stats.numHeads; m++) {
    const answers = stats.argmax[m];
    let wrong = 0;
    let wrongButEarlierRight = 0;
    for (let i = 0; i < N; i++) {
      if (answers[i] !== labels[i]) {
        wrong++;
        wrongButEarlierRight += anyEarlierRight[i];
      }
    }
    result.push(wrong > 0 ? wrongButEarlierRight / wrong : 0);
    for (let i = 0; i < N; i++) if (answers[i] === labels[i]) anyEarlierRight[i] = 1;
  }
  return result;
}

/**
 * HI if each earlier head were right independently with probability 1/K:
 * 1 - (1 - 1/K)^(m-1) for head m (1-based).
 */
export function chanceHindsightImprovability(numHeads: number, numClasses: number): number[] {
  if (!(numClasses >= 1)) throw new Error(`numClasses must be >= 1, got ${numClasses}`);
  return Array.from({ length: numHeads }, (_, m) => 1 - Math.pow(1 - 1 / numClasses, m));
}
