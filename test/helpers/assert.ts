// Numeric assertions shared by the tests.
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/tensor';

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, { atol = 1e-5, rtol = 1e-4, what = '' } = {}): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      assert.fail(`${what}: element ${i}: ${a} != ${e} (atol ${atol}, rtol ${rtol})`);
  }
}

export function assertTensorClose(t: Tensor, expected: { shape: number[]; data: number[] }, opts: { atol?: number; rtol?: number; what?: string } = {}): void {
  assert.deepEqual(t.shape, expected.shape, `${opts.what}: shape`);
  assertClose(t.toNumbers(), expected.data, opts);
}
