import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BudgetTableSummary } from '../../src/eval/seeds';
import { renderHtmlReport, writeHtmlReport, ReportInput } from '../../src/report/html-report';
import { renderLineChart } from '../../src/report/svg-chart';

const ms = (mean: number, std: number, n = 3) => ({ mean, std, n });

function summary(mode: 'paper' | 'heldout', acc25: number): BudgetTableSummary {
  return {
    rule: 'confidence',
    mode,
    seeds: 3,
    entries: [
      { budget: 0.25, accuracy: ms(acc25, 0.5), costFraction: ms(0.23, 0.01), params: [0.5, 0.5, 0.5] },
      { budget: 1, accuracy: ms(92, 0.1), costFraction: ms(0.8, 0.01), params: [0.9, 0.9, 0.9] },
    ],
    max: { budget: null, accuracy: ms(92.2, 0.1), costFraction: ms(0.85, 0.01), params: [1, 1, 1] },
  };
}

const input: ReportInput = {
  title: 'ZTW <ResNet-56> on CIFAR-10',
  intro: ['Three seeds & one backbone.'],
  meta: { dataset: 'CIFAR-10', seeds: 3 },
  baseAccuracy: ms(92, 0.2),
  methods: [
    {
      name: 'SDN',
      budgets: [summary('paper', 77.7), summary('heldout', 76.9)],
      hindsight: { mean: [0, 0.45], std: [0, 0.02], n: 3 },
      headAccuracies: { mean: [60, 70], std: [1, 1], n: 3 },
    },
    {
      name: 'ZTW',
      budgets: [summary('paper', 80.3)],
      hindsight: { mean: [0, 0.12], std: [0, 0.01], n: 3 },
    },
  ],
  chanceHindsight: [0, 0.1],
  figures: [
    {
      title: 'Accuracy vs cost',
      svg: renderLineChart({ title: 'curve', xLabel: 'x', yLabel: 'y', series: [{ name: 'ZTW', points: [{ x: 0, y: 1 }] }] }),
      caption: 'Mean over seeds.',
    },
  ],
};

test('HTML report holds both budget modes, HI with chance, head accuracies and inline SVG', () => {
  const html = renderHtmlReport(input);
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.ok(html.includes('<title>ZTW &lt;ResNet-56&gt; on CIFAR-10</title>'));
  assert.ok(html.includes('<p>Three seeds &amp; one backbone.</p>'));
  assert.ok(html.includes('<th>dataset</th><td>CIFAR-10</td>'));
  // Paper section lists SDN and ZTW; held-out section only SDN.
  const paperAt = html.indexOf('paper mode');
  const heldoutAt = html.indexOf('held-out mode');
  assert.ok(paperAt > 0 && heldoutAt > paperAt);
  const paperSection = html.slice(paperAt, heldoutAt);
  assert.ok(paperSection.includes('<td>77.7 ± 0.5<small>@ 23 ± 1%</small></td>'));
  assert.ok(paperSection.includes('<td>80.3 ± 0.5'));
  const heldoutSection = html.slice(heldoutAt, html.indexOf('<figure>'));
  assert.ok(heldoutSection.includes('76.9 ± 0.5'));
  assert.ok(!heldoutSection.includes('<td>ZTW</td>'));
  assert.ok(html.includes('<th>25%</th><th>100%</th><th>Max</th>'));
  // Inline SVG, no external resources.
  assert.ok(html.includes('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(!/(src|href)="http/.test(html));
  // HI in percent, with the chance column.
  assert.ok(html.includes('<tr><td>2</td><td>45.0 ± 2.0</td><td>12.0 ± 1.0</td><td>10.0</td></tr>'));
  assert.ok(html.includes('Accuracy of each head alone'));
  assert.ok(html.includes('<tr><td>2</td><td>70.0 ± 1.0</td></tr>'));
});

test('writeHtmlReport replaces the file atomically', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-html-'));
  try {
    const file = path.join(dir, 'report.html');
    fs.writeFileSync(file, 'old');
    writeHtmlReport(file, input);
    assert.equal(fs.readFileSync(file, 'utf8'), renderHtmlReport(input));
    assert.deepEqual(fs.readdirSync(dir), ['report.html']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
