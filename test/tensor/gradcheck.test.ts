// Finite-difference gradient checks in float64: backward() against central
// differences of a random projection of each op's output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, cat, noGrad, tidy, setNumThreads, Tensor } from '../../src/tensor';
import { F } from '../../src/nn';
import { mulberry32 } from '../helpers/random';

setNumThreads(1); // many tiny evaluations: threads only add overhead

const rng = mulberry32;
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
/** Values in [lo, hi). */
function uniform(shape: number[], seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: size(shape) }, () => lo + (hi - lo) * r());
}
/** Well-separated distinct values (a shuffled grid), so max-pooling has no near ties. */
function distinct(shape: number[], seed: number): Float64Array {
  const n = size(shape);
  const r = rng(seed);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

interface Input { data: Float64Array; shape: number[] }
const inp = (shape: number[], seed: number, lo = -1, hi = 1): Input => ({ data: uniform(shape, seed, lo, hi), shape });

/**
 * Checks d(sum(f(xs) * R))/dx for every input against central differences,
 * R a fixed random tensor of f's output shape.
 */
function gradcheck(name: string, inputs: Input[], f: (xs: Tensor[]) => Tensor, { eps = 1e-6, atol = 1e-6, rtol = 1e-5 } = {}): void {
  tidy(() => {
    const leaves = inputs.map((i) => tensor(i.data, i.shape, 'float64').requiresGrad_());
    const out = f(leaves);
    assert.equal(out.dtype, 'float64', `${name}: output dtype`);
    const proj = tensor(uniform(out.shape, 99, 0.5, 1.5), out.shape, 'float64');
    out.mul(proj).sum().backward();
    const analytic = leaves.map((l, k) => {
      const g = l.grad;
      assert.ok(g, `${name}: input ${k} got no gradient`);
      assert.deepEqual(g.shape, inputs[k].shape, `${name}: gradient ${k} shape`);
      return g.data() as Float64Array;
    });
    const loss = (xs: Float64Array[]): number =>
      noGrad(() => tidy(() => f(xs.map((d, k) => tensor(d, inputs[k].shape, 'float64'))).mul(proj).sum().item()));
    let anyNonZero = false;
    inputs.forEach((input, k) => {
      const xs = inputs.map((i) => Float64Array.from(i.data));
      for (let j = 0; j < input.data.length; j++) {
        const orig = xs[k][j];
        xs[k][j] = orig + eps;
        const up = loss(xs);
        xs[k][j] = orig - eps;
        const down = loss(xs);
        xs[k][j] = orig;
        const numeric = (up - down) / (2 * eps);
        const a = analytic[k][j];
        if (a !== 0) anyNonZero = true;
        if (!(Math.abs(a - numeric) <= atol + rtol * Math.abs(numeric)))
          assert.fail(`${name}: input ${k} element ${j}: analytic ${a} vs numeric ${numeric}`);
      }
    });
    assert.ok(anyNonZero, `${name}: all gradients are zero, the check proves nothing`);
  });
}

test('the checker catches a wrong gradient', () => {
  // detach() in the middle drops a term of the gradient: the check must fail.
  assert.throws(
    () => gradcheck('x * detach(x)', [inp([5], 1)], ([x]) => x.mul(x.detach())),
    /analytic .* vs numeric/,
  );
});

test('gradcheck: linear and matmul', () => {
  gradcheck('linear', [inp([3, 4], 1), inp([5, 4], 2), inp([5], 3)], ([x, w, b]) => F.linear(x, w, b));
  gradcheck('linear without bias, 3-D input', [inp([2, 3, 4], 4), inp([2, 4], 5)], ([x, w]) => F.linear(x, w));
  gradcheck('batched matmul with broadcast', [inp([2, 3, 4], 6), inp([4, 2], 7)], ([a, b]) => a.matmul(b));
});

test('gradcheck: conv2d with stride, padding, dilation and groups', () => {
  gradcheck('conv2d stride 2 padding 1 groups 2', [inp([2, 4, 5, 5], 10), inp([4, 2, 3, 3], 11), inp([4], 12)], ([x, w, b]) =>
    F.conv2d(x, w, b, { stride: 2, padding: 1, groups: 2 }),
  );
  gradcheck('conv2d asymmetric stride/padding, dilation 2', [inp([1, 2, 6, 7], 13), inp([3, 2, 2, 3], 14)], ([x, w]) =>
    F.conv2d(x, w, undefined, { stride: [1, 2], padding: [2, 1], dilation: 2 }),
  );
  gradcheck('depthwise conv2d', [inp([1, 3, 4, 4], 15), inp([3, 1, 3, 3], 16), inp([3], 17)], ([x, w, b]) =>
    F.conv2d(x, w, b, { padding: 1, groups: 3 }),
  );
});

test('gradcheck: batchNorm (training) and layerNorm', () => {
  gradcheck('batchNorm train', [inp([4, 3, 2, 2], 20), inp([3], 21, 0.5, 1.5), inp([3], 22)], ([x, w, b]) =>
    F.batchNorm(x, { weight: w, bias: b, training: true }),
  );
  gradcheck('batchNorm train on [N, C]', [inp([6, 3], 23)], ([x]) => F.batchNorm(x, { training: true, eps: 1e-3 }));
  gradcheck('layerNorm', [inp([3, 4, 5], 24), inp([4, 5], 25, 0.5, 1.5), inp([4, 5], 26)], ([x, w, b]) => F.layerNorm(x, [4, 5], w, b));
  gradcheck('layerNorm without affine', [inp([2, 6], 27)], ([x]) => F.layerNorm(x, [6]));
});

test('gradcheck: softmax, logSoftmax + nllLoss, crossEntropy', () => {
  gradcheck('softmax dim 1', [inp([3, 4, 2], 30, -2, 2)], ([x]) => F.softmax(x, 1));
  gradcheck('softmax last dim', [inp([2, 5], 31, -3, 3)], ([x]) => x.softmax(-1));
  const target = tensor([1, 0, 4, 2], undefined, 'int64');
  gradcheck('logSoftmax + nllLoss', [inp([4, 5], 32, -2, 2)], ([x]) => F.nllLoss(F.logSoftmax(x, 1), target));
  gradcheck('nllLoss weighted, reduction sum', [inp([4, 5], 33, -2, 2)], ([x]) =>
    F.nllLoss(x.logSoftmax(1), target, 'sum', tensor([1, 2, 0.5, 1, 3], undefined, 'float64')),
  );
  gradcheck('crossEntropy', [inp([4, 5], 34, -2, 2)], ([x]) => F.crossEntropy(x, target));
  gradcheck('crossEntropy label smoothing, reduction none', [inp([4, 5], 35, -2, 2)], ([x]) =>
    F.crossEntropy(x, target, { labelSmoothing: 0.1, reduction: 'none' }),
  );
  gradcheck('crossEntropy over [N, K, H]', [inp([2, 3, 4], 36, -2, 2)], ([x]) =>
    F.crossEntropy(x, tensor([[0, 1, 2, 1], [2, 2, 0, 1]], undefined, 'int64')),
  );
  gradcheck('klDiv batchmean', [inp([3, 4], 37, -2, 2), inp([3, 4], 38, 0.1, 1)], ([x, t]) => F.klDiv(x.logSoftmax(1), t.softmax(1), 'batchmean'));
});

test('gradcheck: pooling', () => {
  gradcheck('maxPool2d 2x2', [{ data: distinct([2, 2, 4, 4], 40), shape: [2, 2, 4, 4] }], ([x]) => F.maxPool2d(x, 2));
  gradcheck('maxPool2d 3x3 stride 2 padding 1 (overlapping)', [{ data: distinct([1, 2, 5, 5], 41), shape: [1, 2, 5, 5] }], ([x]) =>
    F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
  );
  gradcheck('avgPool2d 2x2', [inp([2, 2, 4, 4], 42)], ([x]) => F.avgPool2d(x, 2));
  gradcheck('avgPool2d 3x3 stride 2 padding 1, ceil, no pad count', [inp([1, 2, 6, 6], 43)], ([x]) =>
    F.avgPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
  );
  gradcheck('adaptiveAvgPool2d 7x7 -> 3x3', [inp([1, 2, 7, 7], 44)], ([x]) => F.adaptiveAvgPool2d(x, 3));
  gradcheck('adaptiveAvgPool2d global', [inp([2, 3, 3, 4], 45)], ([x]) => F.adaptiveAvgPool2d(x, 1));
  gradcheck('adaptiveMaxPool2d', [{ data: distinct([1, 2, 5, 5], 46), shape: [1, 2, 5, 5] }], ([x]) => F.adaptiveMaxPool2d(x, 2));
});

test('gradcheck: elementwise division, pow, sqrt', () => {
  gradcheck('div with broadcast', [inp([3, 4], 50), inp([1, 4], 51, 0.5, 2)], ([a, b]) => a.div(b));
  gradcheck('div by scalar', [inp([5], 52)], ([a]) => a.div(3));
  gradcheck('pow scalar exponent', [inp([6], 53, 0.2, 2)], ([x]) => x.pow(2.5));
  gradcheck('pow tensor exponent', [inp([2, 3], 54, 0.2, 2), inp([2, 3], 55, -1.5, 1.5)], ([x, y]) => x.pow(y));
  gradcheck('sqrt', [inp([7], 56, 0.1, 3)], ([x]) => x.sqrt());
  gradcheck('rsqrt, reciprocal, exp, log, tanh, sigmoid chain', [inp([6], 57, 0.2, 2)], ([x]) =>
    x.rsqrt().add(x.reciprocal()).add(x.exp().mul(0.1)).add(x.log()).add(x.tanh()).add(x.sigmoid()),
  );
});

test('gradcheck: gather, indexSelect, narrow/cat and reductions', () => {
  const idx = tensor([[0, 0], [4, 1], [2, 2]], undefined, 'int64'); // repeats accumulate
  gradcheck('gather dim 1', [inp([3, 5], 60)], ([x]) => x.gather(1, idx));
  gradcheck('indexSelect with repeats', [inp([4, 3], 61)], ([x]) => x.indexSelect(0, tensor([3, 0, 3], undefined, 'int64')));
  gradcheck('narrow + cat', [inp([3, 4], 62), inp([3, 2], 63)], ([x, y]) => cat([x.narrow(1, 1, 2), y, x.narrow(1, 0, 1).mul(2)], 1));
  gradcheck('cat dim 0 + transpose', [inp([2, 3], 64), inp([1, 3], 65)], ([x, y]) => cat([x, y], 0).transpose(0, 1));
  gradcheck('mean/var/logsumexp', [inp([3, 4], 66)], ([x]) =>
    x.mean([1], true).add(x.var([1], true, true)).add(x.logsumexp([1], true)).add(x.std([0], true, true).sum()),
  );
  gradcheck('norm', [inp([5], 67)], ([x]) => x.norm(2).add(x.sum().mul(0)));
});

test('gradcheck: small conv net composition', () => {
  const target = tensor([2, 0], undefined, 'int64');
  gradcheck(
    'conv -> bn -> relu -> maxpool -> linear -> crossEntropy',
    [inp([2, 2, 6, 6], 70), inp([3, 2, 3, 3], 71), inp([4, 27], 72)],
    ([x, w, lw]) => {
      const h = F.maxPool2d(F.relu(F.batchNorm(F.conv2d(x, w, undefined, { padding: 1 }), { training: true }).add(0.3)), 2);
      return F.crossEntropy(F.linear(h.flatten(1), lw), target);
    },
    { atol: 1e-5, rtol: 1e-4 },
  );
});
