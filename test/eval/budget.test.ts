import { test } from 'node:test';
import assert from 'node:assert/strict';
import { budgetIndex, heldOutBudgetTable, paperBudgetTable } from '../../src/eval/budget';
import { evaluateMethod } from '../../src/eval/evaluate';
import { SweepResult } from '../../src/eval/sweep';
import { headOutputsFromArrays } from '../../src/eval/types';

function sweepOf(params: number[], meanCost: number[], accuracy: number[]): SweepResult {
  const baseCost = 100;
  return {
    rule: 'confidence',
    params,
    accuracy,
    meanCost,
    costFraction: meanCost.map((c) => c / baseCost),
    baseCost,
  };
}

const sweep = sweepOf([0.1, 0.2, 0.3, 0.4, 0.5], [20, 40, 60, 80, 100], [50, 60, 70, 80, 75]);

test('paper mode takes the last tau whose mean cost is strictly below the budget', () => {
  const table = paperBudgetTable(sweep);
  assert.equal(table.mode, 'paper');
  assert.deepEqual(
    table.entries.map((e) => [e.budget, e.param, e.accuracy, e.costFraction]),
    [
      [0.25, 0.1, 50, 0.2],
      [0.5, 0.2, 60, 0.4],
      [0.75, 0.3, 70, 0.6],
      [1, 0.4, 80, 0.8], // cost 100 is not below 100
    ],
  );
  assert.deepEqual(table.max, { budget: null, param: 0.4, accuracy: 80, costFraction: 0.8 });
});

test('a cost equal to the budget does not fit; no fitting tau gives nulls', () => {
  const table = paperBudgetTable(sweep, { fractions: [0.6, 0.1] });
  assert.equal(table.entries[0].param, 0.2);
  assert.deepEqual(table.entries[1], { budget: 0.1, param: null, accuracy: null, costFraction: null });
  assert.equal(JSON.stringify(table.entries[1].accuracy), 'null');
});

test('"last" means last in tau order, even if cost is not monotone', () => {
  const bumpy = sweepOf([0.1, 0.2, 0.3], [20, 30, 22], [40, 45, 41]);
  assert.equal(budgetIndex(bumpy, 0.25), 2);
});

test('held-out mode chooses tau on validation and reports test accuracy and cost', () => {
  const val = sweepOf([0.1, 0.2, 0.3, 0.4], [10, 30, 55, 90], [60, 70, 90, 85]);
  const testSweep = sweepOf([0.1, 0.2, 0.3, 0.4], [12, 26, 49, 95], [55, 72, 80, 88]);
  const table = heldOutBudgetTable(val, testSweep, { fractions: [0.25, 0.5, 1] });
  assert.equal(table.mode, 'heldout');
  // 25%: val picks tau 0.1 (test 26 < 25 would have picked nothing else anyway)
  // 50%: val picks 0.2 (55 is over), although test cost 49 at 0.3 would fit
  // 100%: val picks 0.4; test cost there is 95
  assert.deepEqual(
    table.entries.map((e) => [e.param, e.accuracy, e.costFraction]),
    [
      [0.1, 55, 0.12],
      [0.2, 72, 0.26],
      [0.4, 88, 0.95],
    ],
  );
  // Max: best validation accuracy is at 0.3, reported with the test accuracy there.
  assert.deepEqual(table.max, { budget: null, param: 0.3, accuracy: 80, costFraction: 0.49 });
  assert.throws(() => heldOutBudgetTable(val, sweepOf([0.1], [1], [1])), /same parameters/);
});

test('evaluateMethod sweeps test, picks on validation and fills HI and head accuracies', () => {
  // Two heads, binary. Validation: head 0 confident and right on both samples, so small
  // budgets fit on validation; test: same head confident but wrong on one sample.
  const val = {
    outputs: headOutputsFromArrays([
      [
        [0.9, 0.1],
        [0.2, 0.8],
      ],
      [
        [0.6, 0.4],
        [0.4, 0.6],
      ],
    ]),
    labels: Int32Array.from([0, 1]),
  };
  const testSplit = {
    outputs: headOutputsFromArrays([
      [
        [0.9, 0.1],
        [0.7, 0.3],
      ],
      [
        [0.6, 0.4],
        [0.4, 0.6],
      ],
    ]),
    labels: Int32Array.from([0, 1]),
  };
  const result = evaluateMethod({
    rule: 'confidence',
    test: testSplit,
    val,
    costs: { exitCosts: [40, 100], baseCost: 100 },
    fractions: [0.5, 1],
    thresholdCount: 10,
  });
  assert.deepEqual(result.headAccuracies, [50, 100]);
  assert.deepEqual(result.hindsight, [0, 0]);
  // Paper mode on test: under 50% only tau below 0.7 fits (both exit at head 0): 50%.
  assert.equal(result.paper.entries[0].accuracy, 50);
  assert.equal(result.paper.entries[0].costFraction, 0.4);
  // Under 100%: the last tau with cost below 100 keeps sample 0 at head 0, sample 1 at head 1.
  assert.equal(result.paper.entries[1].accuracy, 100);
  assert.equal(result.paper.entries[1].costFraction, 0.7);
  assert.ok(result.heldout);
  assert.ok(result.valSweep);
  // Validation grid: 10 taus over 0.6..1. Validation cost is 40 below tau 0.8, 70 up to 0.9,
  // then 100: 50% picks grid[4] (~0.778), 100% picks grid[6] (~0.867).
  const grid = result.valSweep.params;
  assert.deepEqual(result.heldout.entries.map((e) => e.param), [grid[4], grid[6]]);
  // On test, sample 1's head-0 confidence is only 0.7, so it runs on to head 1: the 50% pick
  // actually spends 70% on test (and is right on both samples).
  assert.equal(result.heldout.entries[0].accuracy, 100);
  assert.equal(result.heldout.entries[0].costFraction, 0.7);
  assert.equal(result.heldout.max.param, grid[0]);
  assert.equal(result.heldout.max.accuracy, 50);
});
