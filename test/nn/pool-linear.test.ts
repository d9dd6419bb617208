// The classifier over globally pooled maps in one native call (Linear.forwardPooled,
// F.poolLinear) against the ATen ops it stands for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/nn/functional';
import { Linear } from '../../src/nn/layers';
import { collectCosts } from '../../src/nn/profiler';
import { manualSeed, randn, tensor, zeros } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import { setNumThreads } from '../../src/tensor/native';
import { TorchError } from '../../src/tensor';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

const composed = (x: ReturnType<typeof randn>, fc: Linear) => fc.forward(F.adaptiveAvgPool2d(x, 1).flatten(1));

test('poolLinear equals adaptiveAvgPool2d + flatten + linear: batch sizes, channel counts, map sizes, both layouts, with and without bias', () => {
  manualSeed(3);
  for (const [n, c, h, w] of [[1, 64, 8, 8], [5, 10, 3, 5], [3, 33, 1, 1], [2, 16, 32, 32]])
    for (const layout of ['contiguous', 'channels_last'] as const)
      for (const bias of [true, false])
        tidy(() => {
          const fc = new Linear({ inFeatures: c, outFeatures: 7, bias });
          const x = randn([n, c, h, w]).contiguous(layout);
          const want = noGrad(() => composed(x, fc));
          const got = noGrad(() => fc.forwardPooled(x));
          assert.deepEqual(got.shape, [n, 7]);
          assertClose(got.toNumbers(), want.toNumbers(), { atol: 1e-5, what: `[${n}, ${c}, ${h}, ${w}] ${layout} bias ${bias}` });
        });
});

test('with gradients forwardPooled is the ATen composition: same gradients for the input and the weights', () => {
  manualSeed(4);
  tidy(() => {
    const fc = new Linear({ inFeatures: 12, outFeatures: 3 });
    const x = randn([2, 12, 4, 4]).requiresGrad_();
    fc.forwardPooled(x).square().sum().backward();
    const gx = x.grad!.toNumbers();
    const gw = fc.weight.grad!.toNumbers();
    x.grad = undefined;
    fc.weight.grad = undefined;
    composed(x, fc).square().sum().backward();
    assertClose(gx, x.grad!.toNumbers(), { what: 'input gradient' });
    assertClose(gw, fc.weight.grad!.toNumbers(), { what: 'weight gradient' });
  });
});

test('under the profiler forwardPooled counts the pooling and the linear layer as the composition does', () => {
  tidy(() => {
    const fc = new Linear({ inFeatures: 16, outFeatures: 10 });
    const x = zeros([1, 16, 8, 8]);
    const strip = (ops: { op: string; macs: number; flops: number }[]) => ops.map(({ op, macs, flops }) => ({ op, macs, flops }));
    const fused = noGrad(() => collectCosts(() => void fc.forwardPooled(x)));
    const plain = noGrad(() => collectCosts(() => void composed(x, fc)));
    assert.deepEqual(strip(fused), strip(plain));
    assert.deepEqual(fused.map((o) => o.op), ['adaptiveAvgPool2d', 'linear']);
  });
});

test('a NaN in the maps reaches the logits; a weight of the wrong width or an int tensor is a typed error', () => {
  tidy(() => {
    const fc = new Linear({ inFeatures: 4, outFeatures: 2 });
    const x = zeros([1, 4, 2, 2]).contiguous('channels_last');
    const nan = tensor([NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 4, 2, 2]);
    assert.ok(noGrad(() => fc.forwardPooled(nan)).toNumbers().every(Number.isNaN));
    assert.throws(() => noGrad(() => F.poolLinear(zeros([1, 5, 2, 2]), fc.weight, fc.bias)), TorchError);
    assert.throws(() => noGrad(() => F.poolLinear(zeros([1, 4, 2, 2], 'int32'), fc.weight, fc.bias)), TorchError);
    assert.throws(() => noGrad(() => F.poolLinear(zeros([4, 2, 2]), fc.weight, fc.bias)), TorchError);
    assert.deepEqual(noGrad(() => fc.forwardPooled(x)).shape, [1, 2]);
  });
});
