// The native exit book against the JS one (onnx-core's ExitBook, the
// bookkeeping the offline evaluator's numbers were checked against): the
// same exits, predictions, costs and probabilities to the bit, step by step,
// with exact and near ties, NaNs and every sample leaving or staying; and
// its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCombiner } from '../../src/exits/combine';
import { ExitBook, fillOrder } from '../../src/runtime/onnx-core';
import { NativeExitBook } from '../../src/runtime/native-book';
import type { ExitResult } from '../../src/runtime/early-exit';
import { native } from '../../src/tensor/native';
import { mulberry32 } from '../helpers/random';

/** n rows of K log-probabilities (a log-softmax each), with ties, near ties, NaNs and out-of-range rows mixed in. */
function logProbRows(n: number, K: number, rand: () => number): Float32Array {
  const out = new Float32Array(n * K);
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: K }, () => 4 * (rand() - 0.5));
    const kind = rand();
    if (kind < 0.15) z[K - 1] = z[0] = Math.max(...z) + 1; // an exact tie for the top
    else if (kind < 0.25) z[1] = Math.max(...z) + 1, z[0] = z[1] - 1e-7; // a near tie, first below
    else if (kind < 0.28) z[Math.floor(rand() * K)] = NaN;
    else if (kind < 0.32) {
      // Not a log-softmax: values past exp's float32 range (probabilities of 0 and Infinity, ties among them).
      for (let k = 0; k < K; k++) out[i * K + k] = (rand() < 0.5 ? 1 : -1) * (90 + 400 * rand());
      continue;
    }
    const mx = Math.max(...z.filter((v) => !Number.isNaN(v)));
    const lse = mx + Math.log(z.reduce((s, v) => s + (Number.isNaN(v) ? 0 : Math.exp(v - mx)), 0));
    for (let k = 0; k < K; k++) out[i * K + k] = z[k] - lse;
  }
  return out;
}

function geometric(M: number, K: number, rand: () => number): ExitCombiner {
  const weights = Array.from({ length: M }, (_, m) => Array.from({ length: m + 1 }, () => Math.exp(rand() - 0.5) / (m + 1)));
  const bias = Array.from({ length: M }, () => Array.from({ length: K }, () => 0.3 * (rand() - 0.5)));
  return new ExitCombiner({ kind: 'geometric', numClasses: K, weights, bias });
}

for (const withEnsemble of [false, true])
  test(`the native exit book equals the JS one to the bit (${withEnsemble ? 'geometric ensemble' : 'no ensemble'})`, () => {
    const rand = mulberry32(withEnsemble ? 7 : 11);
    const N = 64;
    const K = 5;
    const M = 6;
    const combiner = withEnsemble ? geometric(M, K, rand) : null;
    const costs = Array.from({ length: M }, (_, m) => 1.5 * (m + 1));
    const nb = new NativeExitBook(combiner, N, K, M, costs);
    let splits = 0;
    for (const tau of [0, 0.4, 0.6, 0.8, 0.95, 1.2]) {
      const res: ExitResult = { prediction: new Int32Array(N), probs: new Float32Array(N * K), exitIndex: new Int32Array(N), cost: new Float64Array(N) };
      const js = new ExitBook(combiner, res, { kind: 'confidence', tau }, N, K, M);
      let n = N;
      for (let m = 0; m < M && n > 0; m++) {
        const lp = logProbRows(n, K, rand);
        const final = m === M - 1;
        const want = Array.from(js.step(m, lp, final, costs[m]));
        const got = Array.from(nb.step(m, lp, final, tau, false));
        assert.deepEqual(got, want, `rows that stay after exit ${m} at tau ${tau}`);
        assert.ok(got.every((r, j) => r === j || r >= got.length), 'fill order: each row stays in place or comes from past the kept ones');
        assert.equal(nb.running, want.length);
        if (want.length > 0 && want.length < n) splits++;
        if (want.length < n) js.keep(js.buffers.stay.subarray(0, want.length));
        n = want.length;
      }
      const a = nb.answers();
      for (const key of ['prediction', 'exitIndex', 'cost', 'probs'] as const)
        assert.ok(
          a[key].every((v, i) => Object.is(v, res[key][i])),
          `${key} at tau ${tau}`,
        );
    }
    assert.ok(splits >= 3, 'some exits split the running rows');
  });

test('the native exit book: errors for misuse', () => {
  const nb = new NativeExitBook(null, 2, 3, 2, [1, 2]);
  const lp = new Float32Array(6).fill(Math.log(1 / 3));
  assert.throws(() => nb.step(1, lp, false, 0.5, false), /exit 1 after exit -1/);
  nb.step(0, lp, false, 0.9, false);
  assert.equal(nb.running, 2);
  assert.throws(() => nb.step(1, new Float32Array(3), false, 0.9, false), /3 rows|1 rows of log-probabilities, 2 samples running/);
  assert.throws(() => nb.step(1, new Float32Array(4), false, 0.9, false), /not rows of 3/);
  assert.throws(() => nb.step(2, lp, false, 0.9, false), /out of range/);
  assert.throws(() => native.exitBookStep({}, 0, lp, 0.5, false), /expected an exit book/);
  assert.throws(() => new NativeExitBook(new ExitCombiner({ kind: 'mean', numClasses: 3, weights: [[1], [1, 1]], bias: [null, null] }), 2, 3, 2, [1, 2]), /geometric combiner/);
  assert.throws(() => native.exitBookNew(2, 3, 2, null, null, new Float64Array(2), { store: new Float32Array(1) }), /memory.store holds 1 values, 12 expected/);
  assert.throws(() => native.exitBookNew(2, 3, 2, new Float64Array(3), null, new Float64Array(2), {}), /weights and bias come together/);
  assert.throws(() => native.exitBookNew(0, 3, 2, null, null, new Float64Array(2), {}), /must be positive/);
  // A fresh pass starts at exit 0 whatever the last one left.
  nb.step(0, lp, true, 0.5, false);
  assert.equal(nb.running, 0);
  assert.deepEqual(Array.from(nb.answers().exitIndex), [0, 0]);
});

test('the native exit book: a lower log-probability whose float32 probability ties the top one wins, as in JS', () => {
  // Rows whose class 0 sits one float32 step below class 1, at values where
  // exp rounds both to the same float32: torch.argmax's first maximum of
  // the probabilities is then class 0, not the argmax of the log-probabilities.
  const K = 3;
  const rows: number[][] = [];
  const f32 = new Float32Array(1);
  const i32 = new Int32Array(f32.buffer);
  for (let v = -0.75; rows.length < 8 && v < -0.6; v += 1e-4) {
    f32[0] = v;
    const hi = f32[0];
    i32[0] += 1; // one step further from zero: below hi
    const lo = f32[0];
    if (Math.fround(Math.exp(lo)) === Math.fround(Math.exp(hi))) rows.push([lo, hi, -3]);
  }
  assert.ok(rows.length >= 4, `found ${rows.length} rows with rounding ties`);
  const N = rows.length;
  const lp = Float32Array.from(rows.flat());
  const res: ExitResult = { prediction: new Int32Array(N), probs: new Float32Array(N * K), exitIndex: new Int32Array(N), cost: new Float64Array(N) };
  new ExitBook(null, res, { kind: 'confidence', tau: 0.1 }, N, K, 1).step(0, lp, true, 1);
  const nb = new NativeExitBook(null, N, K, 1, [1]);
  nb.step(0, lp, true, 0.1, false);
  assert.deepEqual(Array.from(res.prediction), new Array(N).fill(0), 'JS picks the first of the tied probabilities');
  assert.deepEqual(Array.from(nb.answers().prediction), Array.from(res.prediction));
});

test('fillOrder: the kept rows below the count stay in place, the places of leaving rows go to the later kept rows in ascending order', () => {
  const rand = mulberry32(3);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 40);
    const ascending = Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.6);
    const k = ascending.length;
    const stay = Int32Array.from([...ascending, ...new Array(n - k).fill(-7)]);
    fillOrder(stay, k, new Int32Array(n));
    const got = Array.from(stay.subarray(0, k));
    assert.deepEqual([...got].sort((a, b) => a - b), ascending, 'the same rows');
    const below = ascending.filter((r) => r < k);
    for (const r of below) assert.equal(got[r], r, `row ${r} stays`);
    const holes = got.filter((r, j) => r !== j);
    assert.deepEqual(holes, ascending.filter((r) => r >= k), 'the later rows fill the holes in order');
    assert.deepEqual(Array.from(stay.subarray(k)), new Array(n - k).fill(-7), 'nothing written past the count');
  }
});
