import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  confidenceExit,
  evaluateExitRule,
  exitHistogram,
  patienceCounts,
  patienceExit,
  scoreExits,
} from '../../src/eval/exit-rules';
import { computeHeadStats, headAccuracies } from '../../src/eval/head-stats';
import { headOutputsFromArrays } from '../../src/eval/types';

// 3 heads x 5 samples x 3 classes. Confidence (max prob) per sample and head:
//   s0: 0.9  0.5  0.5   -> exits at head 0 for tau 0.8
//   s1: 0.5  0.85 0.95  -> head 1
//   s2: 0.4  0.6  0.7   -> never passes 0.8: last head
//   s3: 0.8  0.9  0.6   -> 0.8 is not strictly above 0.8: head 1
//   s4: 1.0  1.0  1.0   -> one-hot everywhere
const outputs = headOutputsFromArrays([
  [
    [0.9, 0.05, 0.05],
    [0.25, 0.5, 0.25],
    [0.3, 0.3, 0.4],
    [0.1, 0.1, 0.8],
    [0, 1, 0],
  ],
  [
    [0.25, 0.25, 0.5],
    [0.05, 0.1, 0.85],
    [0.6, 0.2, 0.2],
    [0.9, 0.05, 0.05],
    [0, 0, 1],
  ],
  [
    [0.5, 0.25, 0.25],
    [0.95, 0.03, 0.02],
    [0.1, 0.7, 0.2],
    [0.2, 0.6, 0.2],
    [1, 0, 0],
  ],
]);

test('confidence exit stops at the first head strictly above tau', () => {
  const d = confidenceExit(outputs, { tau: 0.8 });
  assert.deepEqual([...d.exitHead], [0, 1, 2, 1, 0]);
  assert.deepEqual([...d.prediction], [0, 2, 1, 0, 1]);
});

test('tau 0 exits every sample at the first head', () => {
  const d = confidenceExit(outputs, { tau: 0 });
  assert.deepEqual([...d.exitHead], [0, 0, 0, 0, 0]);
  assert.deepEqual([...d.prediction], [0, 1, 2, 2, 1]);
});

test('tau >= 1 sends every sample to the last head, even fully confident ones', () => {
  for (const tau of [1, 1.5]) {
    const d = confidenceExit(outputs, { tau });
    assert.deepEqual([...d.exitHead], [2, 2, 2, 2, 2]);
    assert.deepEqual([...d.prediction], [0, 0, 1, 1, 0]);
  }
});

test('scoreExits counts correct answers and averages exit costs', () => {
  const labels = Int32Array.from([0, 2, 0, 0, 0]);
  const d = confidenceExit(outputs, { tau: 0.8 });
  const point = scoreExits(d, labels, { exitCosts: [10, 30, 60], baseCost: 50 });
  // correct: s0 (0), s1 (2), s3 (0); wrong: s2 (1), s4 (1)
  assert.equal(point.accuracy, 60);
  // costs: 10 + 30 + 60 + 30 + 10 = 140 over 5 samples
  assert.equal(point.meanCost, 28);
  assert.equal(point.costFraction, 0.56);
  assert.deepEqual(exitHistogram(d, 3), [0.4, 0.4, 0.2]);
  assert.deepEqual(
    evaluateExitRule(outputs, labels, { exitCosts: [10, 30, 60], baseCost: 50 }, { tau: 0.8 }),
    point,
  );
});

/** Outputs whose argmax sequence per sample is the given answers (0.7 on the answer). */
function fromAnswers(answers: number[][], numClasses: number) {
  const numHeads = answers[0].length;
  return headOutputsFromArrays(
    Array.from({ length: numHeads }, (_, m) =>
      answers.map((seq) =>
        Array.from({ length: numClasses }, (_, c) =>
          c === seq[m] ? 0.7 : 0.3 / (numClasses - 1),
        ),
      ),
    ),
  );
}

test('PBEE counts consecutive equal answers and resets on change', () => {
  const answers = [
    [1, 1, 2, 2, 2],
    [0, 1, 0, 1, 0],
    [3, 3, 3, 3, 3],
    [2, 0, 0, 1, 1],
  ];
  const stats = computeHeadStats(fromAnswers(answers, 4));
  const counts = patienceCounts(stats).map((c) => [...c]);
  // counts[head][sample]
  assert.deepEqual(counts, [
    [1, 1, 1, 1],
    [2, 1, 2, 1],
    [1, 1, 3, 2],
    [2, 1, 4, 1],
    [3, 1, 5, 2],
  ]);
  const exits = (t: number) => [...patienceExit(stats, { patience: t }).exitHead];
  assert.deepEqual(exits(1), [0, 0, 0, 0]);
  assert.deepEqual(exits(2), [1, 4, 1, 2]);
  assert.deepEqual(exits(3), [4, 4, 2, 4]);
  assert.deepEqual(exits(4), [4, 4, 3, 4]);
  assert.deepEqual(exits(5), [4, 4, 4, 4]);
  // Never reaching patience falls back to the last head's answer.
  assert.deepEqual([...patienceExit(stats, { patience: 4 }).prediction], [2, 0, 3, 1]);
  assert.deepEqual([...patienceExit(stats, { patience: 2 }).prediction], [1, 0, 3, 0]);
});

test('head accuracies score each head alone', () => {
  const labels = Int32Array.from([0, 2, 0, 0, 0]);
  assert.deepEqual(headAccuracies(outputs, labels), [20, 60, 40]);
});

test('malformed outputs and labels are rejected', () => {
  assert.throws(() => headOutputsFromArrays([[[0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]));
  assert.throws(() => headAccuracies(outputs, Int32Array.from([0, 0, 0, 0, 3])), /outside/);
  assert.throws(() => computeHeadStats(headOutputsFromArrays([[[0.5, NaN]]])), /NaN/);
});
