import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BudgetTable } from '../../src/eval/budget';
import { aggregateBudgetTables, meanStd, meanStdSeries } from '../../src/eval/seeds';

test('meanStd uses the sample standard deviation and skips missing values', () => {
  assert.deepEqual(meanStd([1, 2, 3]), { mean: 2, std: 1, n: 3 });
  assert.deepEqual(meanStd([5]), { mean: 5, std: 0, n: 1 });
  assert.deepEqual(meanStd([2, null, 4, NaN]), { mean: 3, std: Math.SQRT2, n: 2 });
  assert.equal(meanStd([null, null]), null);
});

test('meanStdSeries averages per position', () => {
  const s = meanStdSeries([
    [0, 0.2, 0.4],
    [0, 0.4, 0.4],
  ]);
  assert.deepEqual(s.mean.map((v) => +v.toFixed(12)), [0, 0.3, 0.4]);
  assert.deepEqual(s.std.map((v) => +v.toFixed(12)), [0, +(0.2 / Math.SQRT2).toFixed(12), 0]);
  assert.throws(() => meanStdSeries([[1], [1, 2]]));
});

function table(acc25: number | null, acc100: number, max: number): BudgetTable {
  return {
    rule: 'confidence',
    mode: 'paper',
    entries: [
      { budget: 0.25, param: acc25 === null ? null : 0.5, accuracy: acc25, costFraction: acc25 === null ? null : 0.2 },
      { budget: 1, param: 0.9, accuracy: acc100, costFraction: 0.9 },
    ],
    max: { budget: null, param: 0.95, accuracy: max, costFraction: 0.95 },
  };
}

test('budget tables aggregate entry by entry over seeds', () => {
  const summary = aggregateBudgetTables([table(70, 90, 91), table(null, 92, 93), table(74, 94, 95)]);
  assert.equal(summary.seeds, 3);
  assert.deepEqual(summary.entries[0].accuracy, { mean: 72, std: Math.SQRT2 * 2, n: 2 });
  assert.deepEqual(summary.entries[0].params, [0.5, null, 0.5]);
  assert.deepEqual(summary.entries[1].accuracy, { mean: 92, std: 2, n: 3 });
  assert.deepEqual(summary.max.accuracy, { mean: 93, std: 2, n: 3 });
  const other = { ...table(1, 2, 3), mode: 'heldout' as const };
  assert.throws(() => aggregateBudgetTables([table(1, 2, 3), other]), /cannot aggregate/);
});
