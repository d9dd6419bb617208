import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chanceHindsightImprovability } from '../../src/eval/hindsight';
import { accuracyCostChartSvg, hindsightChartSvg } from '../../src/report/plots';
import { axisScale, renderLineChart } from '../../src/report/svg-chart';

const curves = {
  series: [
    { name: 'SDN', points: [{ costFraction: 0.2, accuracy: 70 }, { costFraction: 0.9, accuracy: 91 }] },
    { name: 'PBEE', points: [{ costFraction: 0.3, accuracy: 65 }, { costFraction: 1.1, accuracy: 90 }] },
    { name: 'ZTW', points: [{ costFraction: 0.2, accuracy: 75 }, { costFraction: 0.8, accuracy: 92 }] },
  ],
  base: { accuracy: 92 },
};

test('accuracy-cost chart names every series, the base network and both axes', () => {
  const svg = accuracyCostChartSvg({ ...curves, title: 'ResNet-56 / CIFAR-10' });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (const name of ['SDN', 'PBEE', 'ZTW', 'Base network', 'ResNet-56 / CIFAR-10']) {
    assert.ok(svg.includes(`>${name}</text>`), `missing label ${name}`);
  }
  assert.ok(svg.includes('Inference cost (% of base network)'));
  assert.ok(svg.includes('Accuracy (%)'));
  // Three lines and one diamond marker in the plot, one more diamond in the legend.
  assert.equal((svg.match(/<path d="M[^"]*" fill="none"/g) ?? []).length, 3);
  assert.equal((svg.match(/ Z" fill="#222222"/g) ?? []).length, 2);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});

test('the cost axis is in percent: x 0.2..1.1 spans ticks 20..110', () => {
  const svg = accuracyCostChartSvg(curves);
  assert.ok(svg.includes('>20</text>'));
  assert.ok(svg.includes('>100</text>'));
  assert.ok(!svg.includes('>0.2</text>'));
});

test('labels are escaped', () => {
  const svg = renderLineChart({
    title: 'a < b & c',
    xLabel: 'x',
    yLabel: 'y',
    series: [{ name: '<ZTW>', points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] }],
  });
  assert.ok(svg.includes('a &lt; b &amp; c'));
  assert.ok(svg.includes('&lt;ZTW&gt;'));
  assert.ok(!svg.includes('<ZTW>'));
});

test('HI chart has one line per method, a dashed chance line and integer head ticks', () => {
  const svg = hindsightChartSvg({
    methods: [
      { name: 'SDN', values: [0, 0.4, 0.5, 0.6], std: [0, 0.05, 0.05, 0.05] },
      { name: 'ZTW', values: [0, 0.1, 0.12, 0.15] },
    ],
    chance: chanceHindsightImprovability(4, 10),
  });
  for (const name of ['SDN', 'ZTW', 'Chance']) assert.ok(svg.includes(`>${name}</text>`));
  assert.ok(svg.includes('stroke-dasharray'));
  assert.ok(svg.includes('fill-opacity="0.15"'), 'std band drawn');
  for (const head of ['1', '2', '3', '4']) assert.ok(svg.includes(`>${head}</text>`));
  assert.ok(!svg.includes('>1.5</text>'));
});

test('axis ticks land on round numbers covering the data', () => {
  const a = axisScale([0.13, 0.97]);
  assert.equal(a.min, 0.1);
  assert.equal(a.max, 1);
  assert.deepEqual(a.ticks, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
  assert.equal(a.format(0.5), '0.5');
  const b = axisScale([1, 27], { integer: true, nice: false });
  assert.deepEqual(b.ticks, [5, 10, 15, 20, 25]);
  const c = axisScale([3, 3]);
  assert.ok(c.min < 3 && c.max > 3);
});
