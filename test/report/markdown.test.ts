import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BudgetTableSummary } from '../../src/eval/seeds';
import { budgetTableMarkdown } from '../../src/report/markdown';

const ms = (mean: number, std: number, n = 3) => ({ mean, std, n });

const ztwSummary: BudgetTableSummary = {
  rule: 'confidence',
  mode: 'paper',
  seeds: 3,
  entries: [
    { budget: 0.25, accuracy: ms(80.33, 0.42, 2), costFraction: ms(0.24, 0.004, 2), params: [0.6, null, 0.62] },
    { budget: 0.5, accuracy: ms(88.7, 0.25), costFraction: ms(0.49, 0.01), params: [0.8, 0.81, 0.79] },
    { budget: 1, accuracy: null, costFraction: null, params: [null, null, null] },
  ],
  max: { budget: null, accuracy: ms(92.1, 0.1), costFraction: ms(0.9, 0.02), params: [0.99, 0.99, 0.99] },
};

test('budget table in Markdown, with base column, std and partial-seed counts', () => {
  const md = budgetTableMarkdown({
    rows: [{ name: 'ZTW', table: ztwSummary }, { name: 'A|B', table: { ...ztwSummary, seeds: 2 } }],
    baseAccuracy: { mean: 92, std: 0.3, n: 3 },
  });
  assert.equal(
    md,
    [
      '| Method | Base | 25% | 50% | 100% | Max |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      '| ZTW | 92.0 ± 0.3 | 80.3 ± 0.4 (2/3) | 88.7 ± 0.3 | – | 92.1 ± 0.1 |',
      '| A\\|B | 92.0 ± 0.3 | 80.3 ± 0.4 | 88.7 ± 0.3 | – | 92.1 ± 0.1 |',
      '',
    ].join('\n'),
  );
});

test('showCost appends the cost actually spent; no base column without a base', () => {
  const md = budgetTableMarkdown({ rows: [{ name: 'ZTW', table: ztwSummary }], showCost: true, digits: 2 });
  const lines = md.trim().split('\n');
  assert.equal(lines[0], '| Method | 25% | 50% | 100% | Max |');
  assert.equal(lines[2], '| ZTW | 80.33 ± 0.42 (2/3) @ 24 ± 0% | 88.70 ± 0.25 @ 49 ± 1% | – | 92.10 ± 0.10 @ 90 ± 2% |');
});
