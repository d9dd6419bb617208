import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchLoader } from '../../src/data/batchLoader';
import type { ImageDataset } from '../../src/data/types';

function synthetic(n: number, c = 3, h = 8, w = 8): ImageDataset {
  const per = c * h * w;
  const images = new Uint8Array(n * per);
  for (let i = 0; i < n; i++) for (let j = 0; j < per; j++) images[i * per + j] = (i * 13 + j * 7) & 255;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 5);
  return { name: 'syn', images, labels, n, c, h, w, numClasses: 5, classNames: ['a', 'b', 'c', 'd', 'e'] };
}

const spec = { cropPadding: 2, flip: true };

test('batches: shapes, labels follow indices, partial last batch, dropLast', () => {
  const ds = synthetic(50);
  const L = new BatchLoader(ds, { batchSize: 16, seed: 1, augment: spec });
  assert.equal(L.numBatches, 4);
  const all = [...L.epoch(0)];
  assert.deepEqual(all.map((b) => b.n), [16, 16, 16, 2]);
  for (const b of all) {
    assert.deepEqual(b.shape, [b.n, 3, 8, 8]);
    assert.equal(b.x.length, b.n * 192);
    assert.ok(b.x instanceof Float32Array && b.y instanceof Int32Array);
    for (let k = 0; k < b.n; k++) assert.equal(b.y[k], ds.labels[b.indices[k]]);
  }
  const seen = all.flatMap((b) => [...b.indices]).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i), 'every sample once per epoch');
  const D = new BatchLoader(ds, { batchSize: 16, dropLast: true });
  assert.equal(D.numBatches, 3);
  assert.throws(() => D.batch(0, 3), /out of range/);
  assert.throws(() => new BatchLoader(ds, { batchSize: 0 }), /positive integer/);
});

test('without augmentation and shuffle: x is the images scaled and normalised, in order', () => {
  const ds = synthetic(10, 1, 4, 4);
  const L = new BatchLoader(ds, { batchSize: 4, shuffle: false, norm: { mean: [0.5], std: [2] } });
  const b = L.batch(0, 1);
  assert.deepEqual([...b.indices], [4, 5, 6, 7]);
  for (let j = 0; j < b.x.length; j++) assert.ok(Math.abs(b.x[j] - (ds.images[4 * 16 + j] / 255 - 0.5) / 2) < 1e-6);
});

test('order is deterministic per (seed, epoch) and changes across epochs and seeds', () => {
  const ds = synthetic(100);
  const a = new BatchLoader(ds, { batchSize: 10, seed: 7 });
  const b = new BatchLoader(ds, { batchSize: 10, seed: 7 });
  assert.deepEqual([...a.order(3)], [...b.order(3)]);
  assert.notDeepEqual([...a.order(3)], [...a.order(4)]);
  assert.notDeepEqual([...a.order(3)], [...new BatchLoader(ds, { batchSize: 10, seed: 8 }).order(3)]);
  assert.deepEqual([...new BatchLoader(ds, { batchSize: 10, shuffle: false }).order(5)], Array.from({ length: 100 }, (_, i) => i));
});

test('resume: starting at epoch e, batch b gives exactly the batches of an uninterrupted run', () => {
  const ds = synthetic(70);
  const opts = { batchSize: 8, seed: 11, augment: spec };
  const full = new BatchLoader(ds, opts);
  const reference = [...full.epoch(0), ...full.epoch(1), ...full.epoch(2)].filter((x) => x.epoch === 2);
  const resumed = [...new BatchLoader(ds, opts).epoch(2, { startBatch: 5 })];
  assert.equal(resumed.length, reference.length - 5);
  resumed.forEach((r, k) => {
    const ref = reference[k + 5];
    assert.equal(r.index, ref.index);
    assert.deepEqual([...r.indices], [...ref.indices]);
    assert.deepEqual(r.x, ref.x);
    assert.deepEqual(r.y, ref.y);
  });
  assert.deepEqual([...new BatchLoader(ds, opts).epoch(2, { startBatch: full.numBatches })], []);
});

test('augmentation depends on the seed; identical seeds give identical batches', () => {
  const ds = synthetic(32);
  const x1 = new BatchLoader(ds, { batchSize: 32, seed: 1, shuffle: false, augment: spec }).batch(0, 0).x;
  const x1b = new BatchLoader(ds, { batchSize: 32, seed: 1, shuffle: false, augment: spec }).batch(0, 0).x;
  const x2 = new BatchLoader(ds, { batchSize: 32, seed: 2, shuffle: false, augment: spec }).batch(0, 0).x;
  const plain = new BatchLoader(ds, { batchSize: 32, seed: 1, shuffle: false }).batch(0, 0).x;
  assert.deepEqual(x1, x1b);
  assert.notDeepEqual(x1, x2);
  assert.notDeepEqual(x1, plain);
  // Same epoch, other batch index draws other augmentations even for the same samples.
  const L = new BatchLoader(ds, { batchSize: 16, seed: 1, shuffle: false, augment: spec });
  assert.notDeepEqual(L.batch(0, 0).x, L.batch(1, 0).x);
});

test('reuseBuffers hands out one buffer', () => {
  const ds = synthetic(20);
  const L = new BatchLoader(ds, { batchSize: 8, reuseBuffers: true });
  const a = L.batch(0, 0);
  const b = L.batch(0, 1);
  const c = L.batch(0, 2);
  assert.equal(a.x.buffer, b.x.buffer);
  assert.equal(c.n, 4);
  assert.equal(c.x.length, 4 * 192);
});
