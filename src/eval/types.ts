/**
 * Data model of the offline evaluation: every head has been run once over a data set and its
 * class probabilities cached, so any exit policy can be replayed without the network.
 */

/** Cached per-head class probabilities. */
export interface HeadOutputs {
  numHeads: number;
  numSamples: number;
  numClasses: number;
  /** One array per head, row-major [numSamples][numClasses], each row normalised. */
  probs: Float32Array[];
}

/** A data split as the evaluator sees it: head outputs and the true labels. */
export interface LabelledOutputs {
  outputs: HeadOutputs;
  labels: Int32Array;
}

/**
 * Costs of exiting: exitCosts[m] is the cost (e.g. MACs) of a sample that stops at head m
 * (backbone up to the tap + all heads so far + ensemble ops); baseCost is the plain
 * backbone's cost, the 100% reference.
 */
export interface CostModel {
  exitCosts: readonly number[];
  baseCost: number;
}

/** Where each sample exited and what it answered. */
export interface ExitDecisions {
  /** 0-based head index per sample. */
  exitHead: Int32Array;
  prediction: Int32Array;
}

/** Accuracy and cost of one operating point (one tau or one patience value). */
export interface OperatingPoint {
  /** Percent of samples answered correctly. */
  accuracy: number;
  /** Mean cost per sample, in the units of exitCosts. */
  meanCost: number;
  /** meanCost / baseCost. */
  costFraction: number;
}

export function validateHeadOutputs(outputs: HeadOutputs): void {
  const { numHeads, numSamples, numClasses, probs } = outputs;
  if (!(numHeads >= 1)) throw new Error(`numHeads must be >= 1, got ${numHeads}`);
  if (!(numClasses >= 1)) throw new Error(`numClasses must be >= 1, got ${numClasses}`);
  if (!(numSamples >= 0)) throw new Error(`numSamples must be >= 0, got ${numSamples}`);
  if (probs.length !== numHeads) {
    throw new Error(`probs has ${probs.length} heads, expected ${numHeads}`);
  }
  for (let m = 0; m < numHeads; m++) {
    if (probs[m].length !== numSamples * numClasses) {
      throw new Error(
        `probs[${m}] has length ${probs[m].length}, expected ${numSamples} x ${numClasses}`,
      );
    }
  }
}

export function validateLabels(
  labels: Int32Array,
  outputs: Pick<HeadOutputs, 'numSamples' | 'numClasses'>,
): void {
  if (labels.length !== outputs.numSamples) {
    throw new Error(`labels has length ${labels.length}, expected ${outputs.numSamples}`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= outputs.numClasses) {
      throw new Error(`label ${labels[i]} of sample ${i} outside [0, ${outputs.numClasses})`);
    }
  }
}

export function validateCosts(costs: CostModel, numHeads: number): void {
  if (costs.exitCosts.length !== numHeads) {
    throw new Error(`exitCosts has ${costs.exitCosts.length} entries, expected ${numHeads}`);
  }
  if (!(costs.baseCost > 0)) throw new Error(`baseCost must be > 0, got ${costs.baseCost}`);
}

/**
 * Builds HeadOutputs from nested arrays [head][sample][class] (small hand-made examples,
 * outputs gathered in plain arrays). Rows are taken as given, not renormalised.
 */
export function headOutputsFromArrays(probs: readonly (readonly (readonly number[])[])[]): HeadOutputs {
  const numHeads = probs.length;
  const numSamples = numHeads > 0 ? probs[0].length : 0;
  const numClasses = numSamples > 0 ? probs[0][0].length : 0;
  const flat = probs.map((head, m) => {
    if (head.length !== numSamples) throw new Error(`head ${m} has ${head.length} samples`);
    const out = new Float32Array(numSamples * numClasses);
    head.forEach((row, i) => {
      if (row.length !== numClasses) throw new Error(`head ${m} sample ${i} has ${row.length} classes`);
      out.set(row, i * numClasses);
    });
    return out;
  });
  const outputs = { numHeads, numSamples, numClasses, probs: flat };
  validateHeadOutputs(outputs);
  return outputs;
}
