import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FASHION_MNIST_CLASSES, loadFashionMnistSource, readFashionClassFile, resolvePackageDir } from '../../src/data/fashionMnist';
import { classCounts, hashDataset } from '../../src/data/dataset';
import { loadDataset } from '../../src/data/registry';

// Reference hashes of the converted splits (sha256 over shape, labels, pixels; see hashDataset).
// They pin the split rule (first 6,000 / last 1,000 per class after dropping malformed entries)
// and the padding, so any change to either is noticed.
const TRAIN_HASH = 'f7b30a0e860a106a5185f08c47c30cf555ef4af76046daf8ecbff8a0f66a4ad3';
const TEST_HASH = 'c6d09506a05f8a4fdb33962a6ec2ac34ad3493b757a9f59e72bfc0c7f5710027';

const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-fmnist-'));
after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));
const warnings: string[] = [];
const warn = (m: string): void => void warnings.push(m);
const file0 = path.join(resolvePackageDir('fashion-mnist'), 'src', 'clothes', '0.json');

test('0.json: the two empty entries (indices 1000 and 7001) are dropped', () => {
  const r = readFashionClassFile(file0);
  assert.equal(r.dropped, 2);
  assert.deepEqual(r.droppedIdx, [1000, 7001]);
  assert.equal(r.entries.length, 7000);
});

test('conversion: 60,000 / 10,000, 6,000 / 1,000 per class, padded 32x32, known hashes; then cache', async () => {
  const a = await loadFashionMnistSource({ cacheDir, warn });
  assert.equal(a.fromCache, false);
  assert.equal(a.notes.length, 1);
  assert.match(a.notes[0], /0\.json: dropped 2 malformed entries \(indices 1000, 7001\)/);
  assert.ok(warnings.some((w) => /dropped 2 malformed/.test(w)), 'the drop is reported through warn');
  assert.equal(a.train.n, 60000);
  assert.equal(a.test.n, 10000);
  assert.deepEqual([a.train.c, a.train.h, a.train.w], [1, 32, 32]);
  assert.deepEqual(classCounts(a.train), new Array(10).fill(6000));
  assert.deepEqual(classCounts(a.test), new Array(10).fill(1000));
  assert.deepEqual(a.train.classNames, FASHION_MNIST_CLASSES);
  assert.equal(a.train.classNames[9], 'Ankle boot');

  // Layout: first train image = first entry of 0.json, 2-px zero border; last test image of
  // class 0 = last well-formed entry of 0.json.
  const { entries } = readFashionClassFile(file0);
  const img = a.train.images.subarray(0, 1024);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
      assert.equal(img[y * 32 + x], inside ? entries[0][(y - 2) * 28 + (x - 2)] : 0);
    }
  }
  const lastTest0 = a.test.images.subarray(999 * 1024, 1000 * 1024);
  assert.equal(lastTest0[5 * 32 + 7], entries[6999][3 * 28 + 5]);
  assert.equal(a.test.labels[999], 0);
  assert.equal(a.test.labels[1000], 1);

  assert.equal(hashDataset(a.train), TRAIN_HASH);
  assert.equal(hashDataset(a.test), TEST_HASH);
  assert.ok(a.stats.mean[0] > 0.2 && a.stats.mean[0] < 0.24, `mean ${a.stats.mean[0]}`);
  assert.ok(a.stats.std[0] > 0.3 && a.stats.std[0] < 0.36, `std ${a.stats.std[0]}`);

  // Cache round trip: same bytes, fast.
  const t0 = performance.now();
  const b = await loadFashionMnistSource({ cacheDir, warn });
  const ms = performance.now() - t0;
  assert.equal(b.fromCache, true);
  assert.equal(hashDataset(b.train), TRAIN_HASH);
  assert.equal(hashDataset(b.test), TEST_HASH);
  assert.deepEqual(b.notes, a.notes, 'the conversion notes survive in the cache');
  assert.deepEqual(b.stats, a.stats);
  assert.ok(ms < 1500, `cache load took ${ms.toFixed(0)} ms`);
  assert.deepEqual(
    fs.readdirSync(cacheDir).filter((f) => f.includes('.tmp-')),
    [],
    'no temporaries left in the cache dir',
  );
});

test('loadDataset: default is fashion-mnist, 500-per-class validation carve, deterministic by seed', async () => {
  const d = await loadDataset(undefined, { cache: cacheDir, warn });
  assert.equal(d.name, 'fashion-mnist');
  assert.equal(d.fromCache, true);
  assert.equal(d.train.n, 55000);
  assert.equal(d.val!.n, 5000);
  assert.equal(d.test.n, 10000);
  assert.deepEqual(classCounts(d.val!), new Array(10).fill(500));
  assert.deepEqual(classCounts(d.train), new Array(10).fill(5500));
  assert.deepEqual(d.inputShape, [1, 32, 32]);
  assert.deepEqual(d.augment, { cropPadding: 4, flip: true });
  assert.equal(d.norm.mean.length, 1);

  const again = await loadDataset('fashion-mnist', { cache: cacheDir, warn });
  assert.equal(hashDataset(again.val!), hashDataset(d.val!));
  assert.equal(hashDataset(again.train), hashDataset(d.train));
  const other = await loadDataset('fashion-mnist', { cache: cacheDir, seed: 1, warn });
  assert.notEqual(hashDataset(other.val!), hashDataset(d.val!));
  const none = await loadDataset('fashion-mnist', { cache: cacheDir, valSize: 0, warn });
  assert.equal(none.val, undefined);
  assert.equal(hashDataset(none.train), TRAIN_HASH);
  await assert.rejects(loadDataset('nope'), /unknown dataset 'nope'/);
});
