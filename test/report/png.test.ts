import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { accuracyCostChartSvg } from '../../src/report/plots';
import { canRenderText, pngSize, svgToPng, writePng } from '../../src/report/png';

const svg = accuracyCostChartSvg({
  series: [{ name: 'ZTW', points: [{ costFraction: 0.3, accuracy: 80 }, { costFraction: 0.9, accuracy: 92 }] }],
  base: { accuracy: 91 },
  width: 600,
  height: 400,
});

test('SVG rasterises to a PNG of the SVG size, or scaled to a width', () => {
  const png = svgToPng(svg);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.deepEqual(pngSize(png), { width: 600, height: 400 });
  assert.deepEqual(pngSize(svgToPng(svg, { width: 1200 })), { width: 1200, height: 800 });
  assert.throws(() => pngSize(Buffer.from('not a png at all, really not')), /not a PNG/);
});

test('a font is found, so labels are drawn (needs e.g. fonts-dejavu-core)', () => {
  assert.equal(canRenderText(), true);
});

test('writePng writes the file atomically, leaving no temporary behind', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-png-'));
  try {
    const file = path.join(dir, 'plots', 'curve.png');
    writePng(file, svg);
    assert.deepEqual(pngSize(fs.readFileSync(file)), { width: 600, height: 400 });
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['curve.png']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
