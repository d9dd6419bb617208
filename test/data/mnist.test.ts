import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadMnistSource } from '../../src/data/mnist';
import { resolvePackageDir } from '../../src/data/fashionMnist';
import { classCounts, hashDataset } from '../../src/data/dataset';
import { loadDataset } from '../../src/data/registry';

test('MNIST: 6:1 per-class split, 32x32 bytes, cache round trip', async (t) => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-mnist-'));
  t.after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));
  const a = await loadMnistSource({ cacheDir });
  assert.equal(a.fromCache, false);
  assert.equal(a.train.n + a.test.n, 10000);
  assert.equal(a.test.n, 1429);
  const tr = classCounts(a.train);
  const te = classCounts(a.test);
  for (let k = 0; k < 10; k++) assert.equal(te[k], Math.round((tr[k] + te[k]) / 7));
  assert.deepEqual([a.train.c, a.train.h, a.train.w], [1, 32, 32]);

  // First training image = first 784 floats of 0.json scaled back to bytes, inside a 2-px border.
  const raw = JSON.parse(fs.readFileSync(path.join(resolvePackageDir('mnist'), 'src', 'digits', '0.json'), 'utf8')).data as number[];
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) assert.equal(a.train.images[(y + 2) * 32 + x + 2], Math.round(raw[y * 28 + x] * 255));
  }
  assert.equal(a.train.images[0], 0);

  const b = await loadMnistSource({ cacheDir });
  assert.equal(b.fromCache, true);
  assert.equal(hashDataset(b.train), hashDataset(a.train));
  assert.equal(hashDataset(b.test), hashDataset(a.test));

  const d = await loadDataset('mnist', { cache: cacheDir });
  assert.equal(d.val!.n, 1000);
  assert.equal(d.train.n, a.train.n - 1000);
  assert.equal(d.augment.flip, false);
});
