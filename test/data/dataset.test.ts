import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedOrBuild, readDatasetCache, writeDatasetCache } from '../../src/data/cache';
import { carveValidation, channelStats, classCounts, hashDataset, makeDataset, subset } from '../../src/data/dataset';
import type { ImageDataset } from '../../src/data/types';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-ds-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Sample i has first pixel i (mod 256) and second pixel i >> 8, so samples are identifiable. */
function synthetic(n: number, K: number, c = 1, h = 3, w = 3): ImageDataset {
  const per = c * h * w;
  const images = new Uint8Array(n * per);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < per; j++) images[i * per + j] = (i * 5 + j * 3) & 255;
    images[i * per] = i & 255;
    images[i * per + 1] = i >> 8;
  }
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % K);
  return makeDataset({ name: 'syn', images, labels, n, c, h, w, classNames: Array.from({ length: K }, (_, k) => `k${k}`) });
}
const idOf = (ds: ImageDataset, i: number): number => ds.images[i * ds.c * ds.h * ds.w] + 256 * ds.images[i * ds.c * ds.h * ds.w + 1];

test('makeDataset rejects inconsistent shapes and out-of-range labels', () => {
  const ok = synthetic(4, 2);
  assert.throws(() => makeDataset({ ...ok, n: 5 }), /images hold 36 bytes, expected/);
  assert.throws(() => makeDataset({ ...ok, labels: Int32Array.from([0, 1, 2, 0]) }, { source: 'f.bin' }), /syn \(f\.bin\): label 2 at index 2 is out of range \[0, 2\)/);
  assert.throws(() => makeDataset({ ...ok, labels: Int32Array.from([0, -1, 0, 0]) }), /label -1 at index 1/);
});

test('cache round trip keeps bytes, labels, names and meta (odd sizes, alignment)', () => {
  const train = synthetic(7, 3, 3, 5, 3);
  const test_ = synthetic(5, 3, 3, 5, 3);
  const f = path.join(dir, 'rt.ztwds');
  writeDatasetCache(f, { name: 'syn', sourceId: 'src-1', splits: { train, test: test_ }, meta: { notes: ['hi'] } });
  const r = readDatasetCache(f)!;
  assert.equal(r.sourceId, 'src-1');
  assert.deepEqual(r.meta, { notes: ['hi'] });
  assert.equal(hashDataset(r.splits.train), hashDataset(train));
  assert.equal(hashDataset(r.splits.test), hashDataset(test_));
  assert.deepEqual(r.splits.train.classNames, ['k0', 'k1', 'k2']);
  assert.equal(readDatasetCache(path.join(dir, 'absent.ztwds')), undefined);
});

test('reading with carve equals carving after reading', () => {
  const train = synthetic(500, 7, 2, 3, 5);
  const f = path.join(dir, 'carve.ztwds');
  writeDatasetCache(f, { name: 'syn', sourceId: 's', splits: { train, test: synthetic(9, 7, 2, 3, 5) } });
  const r = readDatasetCache(f, { carve: { size: 60, seed: 9 } })!;
  const ref = carveValidation(train, { size: 60, seed: 9 });
  assert.equal(hashDataset(r.splits.train), hashDataset(ref.train));
  assert.equal(hashDataset(r.splits.val), hashDataset(ref.val));
  assert.equal(r.splits.val.name, 'syn-val');
  assert.equal(r.splits.test.n, 9);
  assert.throws(() => readDatasetCache(f, { carve: { size: 500, seed: 0 } }), RangeError);
});

test('corrupt or truncated caches are detected, reported and rebuilt; other sources rebuild', async () => {
  const ds = synthetic(20, 4);
  const f = path.join(dir, 'c.ztwds');
  writeDatasetCache(f, { name: 'syn', sourceId: 'A', splits: { train: ds, test: ds } });
  const full = fs.readFileSync(f);
  fs.writeFileSync(f, full.subarray(0, full.length - 10));
  assert.throws(() => readDatasetCache(f), (e: Error) => e.message.includes(f) && /truncated or corrupt/.test(e.message));
  fs.writeFileSync(f, Buffer.from('garbage garbage garbage'));
  assert.throws(() => readDatasetCache(f), /bad magic/);

  const warnings: string[] = [];
  let builds = 0;
  const build = async () => (builds++, { name: 'syn', splits: { train: ds, test: ds } });
  const a = await cachedOrBuild(f, 'A', build, { warn: (m) => warnings.push(m) });
  assert.equal(a.fromCache, false);
  assert.match(warnings[0], /bad magic.*rebuilding/);
  const b = await cachedOrBuild(f, 'A', build, { warn: (m) => warnings.push(m) });
  assert.equal(b.fromCache, true);
  const c = await cachedOrBuild(f, 'B', build, { warn: (m) => warnings.push(m) });
  assert.equal(c.fromCache, false);
  assert.match(warnings[1], /another source/);
  assert.equal(builds, 2);
  // A failing build leaves no file behind.
  const g = path.join(dir, 'never.ztwds');
  await assert.rejects(cachedOrBuild(g, 'A', async () => { throw new Error('bad input'); }), /bad input/);
  assert.equal(fs.existsSync(g), false);
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.tmp-')), []);
});

test('carveValidation: exact size, stratified, disjoint, deterministic; inPlace equals copying', () => {
  const ds = synthetic(1000, 10);
  const { train, val } = carveValidation(ds, { size: 100, seed: 3 });
  assert.equal(val.n, 100);
  assert.equal(train.n, 900);
  assert.deepEqual(classCounts(val), new Array(10).fill(10));
  const ids = new Set([...Array(train.n).keys()].map((i) => idOf(train, i)));
  for (let i = 0; i < val.n; i++) assert.ok(!ids.has(idOf(val, i)), 'val and train are disjoint');
  assert.equal(ids.size + val.n, 1000);
  for (let i = 1; i < train.n; i++) assert.ok(idOf(train, i) > idOf(train, i - 1), 'original order kept');
  const again = carveValidation(ds, { size: 100, seed: 3 });
  assert.equal(hashDataset(again.val), hashDataset(val));
  assert.notEqual(hashDataset(carveValidation(ds, { size: 100, seed: 4 }).val), hashDataset(val));
  // Uneven classes: quotas still sum to the requested size.
  const uneven = synthetic(103, 7);
  assert.equal(carveValidation(uneven, { size: 17, seed: 0 }).val.n, 17);

  const copy = synthetic(1000, 10);
  const inPlace = carveValidation(copy, { size: 100, seed: 3, inPlace: true });
  assert.equal(hashDataset(inPlace.train), hashDataset(train));
  assert.equal(hashDataset(inPlace.val), hashDataset(val));
  assert.throws(() => carveValidation(ds, { size: 1000 }), /size 1000 must be an integer in \[1, 999\]/);
});

test('subset: class-balanced, deterministic, capped by the data', () => {
  const ds = synthetic(300, 3);
  const s = subset(ds, 30, 5);
  assert.equal(s.n, 30);
  assert.deepEqual(classCounts(s), [10, 10, 10]);
  assert.equal(hashDataset(subset(ds, 30, 5)), hashDataset(s));
  assert.notEqual(hashDataset(subset(ds, 30, 6)), hashDataset(s));
  assert.equal(subset(ds, 1000, 0), ds);
  // A class that runs short is topped up by the others.
  const skew = makeDataset({ ...ds, labels: Int32Array.from({ length: 300 }, (_, i) => (i < 2 ? 0 : 1 + (i % 2))) });
  const t = subset(skew, 30, 1);
  assert.equal(t.n, 30);
  assert.equal(classCounts(t)[0], 2);
});

test('channelStats matches a direct computation', () => {
  const ds = synthetic(37, 2, 3, 5, 7);
  const s = channelStats(ds);
  const plane = 35;
  for (let ch = 0; ch < 3; ch++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < ds.n; i++) {
      for (let p = 0; p < plane; p++) {
        const v = ds.images[(i * 3 + ch) * plane + p] / 255;
        sum += v;
        sq += v * v;
      }
    }
    const m = sum / (ds.n * plane);
    assert.ok(Math.abs(s.mean[ch] - m) < 1e-9);
    assert.ok(Math.abs(s.std[ch] - Math.sqrt(sq / (ds.n * plane) - m * m)) < 1e-9);
  }
});
