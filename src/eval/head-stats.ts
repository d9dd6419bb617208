import { HeadOutputs, validateHeadOutputs, validateLabels } from './types';

/**
 * Per-head confidence (max probability) and answer (argmax) of every sample. Every exit rule
 * needs only these, so computing them once makes sweeps independent of the class count.
 */
export interface HeadStats {
  numHeads: number;
  numSamples: number;
  numClasses: number;
  /** [head][sample] max class probability. */
  confidence: Float32Array[];
  /** [head][sample] index of the max class probability (the first one on ties). */
  argmax: Int32Array[];
}

/** Anything the exit rules accept: raw outputs, or stats already computed from them. */
export type HeadSource = HeadOutputs | HeadStats;

export function computeHeadStats(outputs: HeadOutputs): HeadStats {
  validateHeadOutputs(outputs);
  const { numHeads, numSamples, numClasses } = outputs;
  const confidence: Float32Array[] = [];
  const argmax: Int32Array[] = [];
  for (let m = 0; m < numHeads; m++) {
    const p = outputs.probs[m];
    const conf = new Float32Array(numSamples);
    const arg = new Int32Array(numSamples);
    for (let i = 0; i < numSamples; i++) {
      const row = i * numClasses;
      let best = p[row];
      let bestIndex = 0;
      for (let c = 1; c < numClasses; c++) {
        if (p[row + c] !== p[row + c]) throwNaN(m, i);
        if (p[row + c] > best) {
          best = p[row + c];
          bestIndex = c;
        }
      }
      // A NaN confidence would silently never exit; refuse it instead.
      if (best !== best) throwNaN(m, i);
      conf[i] = best;
      arg[i] = bestIndex;
    }
    confidence.push(conf);
    argmax.push(arg);
  }
  return { numHeads, numSamples, numClasses, confidence, argmax };
}

function throwNaN(head: number, sample: number): never {
  throw new Error(`NaN probability at head ${head}, sample ${sample}`);
}

export function isHeadStats(source: HeadSource): source is HeadStats {
  return 'confidence' in source && 'argmax' in source;
}

export function toHeadStats(source: HeadSource): HeadStats {
  return isHeadStats(source) ? source : computeHeadStats(source);
}

/** Accuracy (percent) of each head on its own, as if every sample exited there. */
export function headAccuracies(source: HeadSource, labels: Int32Array): number[] {
  const stats = toHeadStats(source);
  validateLabels(labels, stats);
  return stats.argmax.map((answers) => percentCorrect(answers, labels));
}

export function percentCorrect(predictions: Int32Array, labels: Int32Array): number {
  if (predictions.length !== labels.length) {
    throw new Error(`${predictions.length} predictions for ${labels.length} labels`);
  }
  if (labels.length === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return (100 * correct) / labels.length;
}
