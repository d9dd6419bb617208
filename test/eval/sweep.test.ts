import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confidenceExit, patienceExit, scoreExits } from '../../src/eval/exit-rules';
import { computeHeadStats } from '../../src/eval/head-stats';
import { confidenceSweep, patienceSweep, sweepCurve, thresholdGrid } from '../../src/eval/sweep';
import { HeadOutputs, headOutputsFromArrays } from '../../src/eval/types';
import { mulberry32 } from '../helpers/random';



/**
 * Random normalised outputs. With `coarse`, weights are small integers so confidences repeat
 * across heads and samples: ties with the prefix maximum and with tau are exercised.
 */
function randomOutputs(
  n: number,
  heads: number,
  classes: number,
  seed: number,
  coarse: boolean,
): { outputs: HeadOutputs; labels: Int32Array } {
  const rand = mulberry32(seed);
  const probs: Float32Array[] = [];
  for (let m = 0; m < heads; m++) {
    const p = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        const w = coarse ? Math.floor(rand() * 4) : Math.pow(rand(), 3 - (2 * m) / heads);
        p[i * classes + c] = w;
        sum += w;
      }
      if (sum === 0) {
        p[i * classes] = 1;
        sum = 1;
      }
      for (let c = 0; c < classes; c++) p[i * classes + c] /= sum;
    }
    probs.push(p);
  }
  const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * classes));
  return { outputs: { numHeads: heads, numSamples: n, numClasses: classes, probs }, labels };
}

test('threshold grid runs linearly from the smallest confidence to exactly 1', () => {
  const outputs = headOutputsFromArrays([[[0.6, 0.4]], [[0.2, 0.8]]]);
  const grid = thresholdGrid(outputs, { count: 5 });
  assert.equal(grid.length, 5);
  assert.ok(Math.abs(grid[0] - 0.6) < 1e-7);
  assert.ok(Math.abs(grid[2] - 0.8) < 1e-7);
  assert.equal(grid[4], 1);
  assert.equal(thresholdGrid(outputs).length, 1000);
});

for (const coarse of [false, true]) {
  test(`confidence sweep equals brute force at every tau (coarse=${coarse})`, () => {
    const { outputs, labels } = randomOutputs(400, 7, 5, coarse ? 11 : 7, coarse);
    const costs = { exitCosts: [3, 5, 8, 13, 21, 34, 55], baseCost: 50 };
    const stats = computeHeadStats(outputs);
    // Grid plus every confidence value itself, where strict-vs-not matters most.
    const exact = new Set<number>();
    for (const conf of stats.confidence) for (const c of conf) exact.add(c);
    // Also the double values of the fractions the coarse weights produce (a / b, b <= 15):
    // float32(a / b) may lie above or below them, and both rules must agree on which.
    const fractions: number[] = [];
    for (let b = 1; b <= 15; b++) for (let a = 1; a <= b; a++) fractions.push(a / b);
    const taus = [...thresholdGrid(stats, { count: 200 }), ...exact, ...fractions, 0, 1.2].sort(
      (a, b) => a - b,
    );
    const sweep = confidenceSweep(stats, labels, costs, { taus });
    assert.equal(sweep.params.length, taus.length);
    taus.forEach((tau, j) => {
      const expected = scoreExits(confidenceExit(stats, { tau }), labels, costs);
      assert.equal(sweep.accuracy[j], expected.accuracy, `accuracy at tau ${tau}`);
      assert.ok(Math.abs(sweep.meanCost[j] - expected.meanCost) < 1e-9, `cost at tau ${tau}`);
      assert.ok(Math.abs(sweep.costFraction[j] - expected.costFraction) < 1e-12);
    });
    // Ends of the sweep: tau 0 all at the first head, tau 1 all at the last.
    assert.equal(sweep.meanCost[0], 3);
    assert.equal(sweep.meanCost[taus.length - 1], 55);
  });
}

test('patience sweep equals brute force for t = 1..M', () => {
  const { outputs, labels } = randomOutputs(500, 6, 3, 3, true);
  const costs = { exitCosts: [1, 2, 3, 4, 5, 6], baseCost: 5 };
  const sweep = patienceSweep(outputs, labels, costs);
  assert.deepEqual(sweep.params, [1, 2, 3, 4, 5, 6]);
  for (let t = 1; t <= 6; t++) {
    const expected = scoreExits(patienceExit(outputs, { patience: t }), labels, costs);
    assert.equal(sweep.accuracy[t - 1], expected.accuracy);
    assert.ok(Math.abs(sweep.meanCost[t - 1] - expected.meanCost) < 1e-9);
  }
  assert.equal(sweep.meanCost[0], 1);
  assert.equal(sweep.meanCost[5], 6);
  assert.throws(() => patienceSweep(outputs, labels, costs, { patiences: [0, 1] }));
});

test('confidence sweep rejects unsorted taus and mismatched costs', () => {
  const { outputs, labels } = randomOutputs(10, 3, 3, 1, false);
  const costs = { exitCosts: [1, 2, 3], baseCost: 3 };
  assert.throws(() => confidenceSweep(outputs, labels, costs, { taus: [0.5, 0.2] }), /ascending/);
  assert.throws(() => confidenceSweep(outputs, labels, { exitCosts: [1, 2], baseCost: 3 }));
});

test('sweep curve drops repeated operating points', () => {
  const curve = sweepCurve({
    rule: 'confidence',
    params: [0.1, 0.2, 0.3, 0.4],
    accuracy: [50, 50, 60, 60],
    meanCost: [1, 1, 2, 2],
    costFraction: [0.5, 0.5, 1, 1],
    baseCost: 2,
  });
  assert.deepEqual(curve, [
    { costFraction: 0.5, accuracy: 50 },
    { costFraction: 1, accuracy: 60 },
  ]);
});

test('full-size sweep (N=10,000, M=27, 1,000 taus) is fast', () => {
  const { outputs, labels } = randomOutputs(10_000, 27, 10, 5, false);
  const costs = { exitCosts: Array.from({ length: 27 }, (_, m) => m + 1), baseCost: 27 };
  const start = performance.now();
  const stats = computeHeadStats(outputs);
  const sweep = confidenceSweep(stats, labels, costs, { count: 1000 });
  const pbee = patienceSweep(stats, labels, costs);
  const elapsed = performance.now() - start;
  assert.equal(sweep.params.length, 1000);
  assert.equal(pbee.params.length, 27);
  // Typically tens of milliseconds; the bound only catches an accidental O(N*M*T) loop.
  assert.ok(elapsed < 2000, `took ${elapsed.toFixed(0)} ms`);
});
