import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, deriveSeed } from '../../src/data/rng';

test('Rng: same seed gives the same stream, different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 16 }, () => a.nextU32());
  const sb = Array.from({ length: 16 }, () => b.nextU32());
  const sc = Array.from({ length: 16 }, () => c.nextU32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  for (const v of sa) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
});

test('Rng: int is in range and roughly uniform; float in [0,1)', () => {
  const r = new Rng(1);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 20000; i++) counts[r.int(10)]++;
  for (const c of counts) assert.ok(c > 1800 && c < 2200, `count ${c}`);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
  }
  assert.throws(() => r.int(0), /bad bound/);
});

test('Rng: permutation is a permutation and depends on the seed', () => {
  const p = new Rng(5).permutation(1000);
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.notDeepEqual([...p], [...new Rng(6).permutation(1000)]);
  assert.notDeepEqual([...p], Array.from({ length: 1000 }, (_, i) => i));
});

test('deriveSeed: sensitive to every part and to order', () => {
  const s = new Set([deriveSeed(1, 0, 0), deriveSeed(1, 0, 1), deriveSeed(1, 1, 0), deriveSeed(2, 0, 0), deriveSeed(1, 2 ** 40), deriveSeed(1, 0)]);
  assert.equal(s.size, 6);
  assert.equal(deriveSeed(7, 3, 4), deriveSeed(7, 3, 4));
});
