// Conv-BN inference fusion (src/nn/fused.ts): the folded convolution equals
// conv followed by BN, the cached folded weights follow in-place updates, and
// whole backbones (a ResNet, a WRN) equal their unfused, profiled forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchNorm2d, Conv2d, Dropout } from '../../src/nn/layers';
import { convBn } from '../../src/nn/fused';
import { collectCosts } from '../../src/nn/profiler';
import { createBackbone } from '../../src/models';
import { WideResNet } from '../../src/models/wrn';
import { manualSeed, rand, randn } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import type { Tensor } from '../../src/tensor/tensor';
import { assertClose } from '../helpers/assert';
import { native, setNumThreads } from '../../src/tensor/native';
import { SGD } from '../../src/optim/sgd';

// Small tensors on a shared 2-core machine: one intra-op thread avoids OpenMP contention.
setNumThreads(1);

/** A conv + BN pair with non-trivial affine parameters and running statistics. */
function makePair(o: { bias?: boolean; groups?: number; stride?: number } = {}): { conv: Conv2d; bn: BatchNorm2d } {
  const conv = new Conv2d({ inChannels: 8, outChannels: 8, kernelSize: 3, padding: 1, bias: o.bias ?? false, groups: o.groups ?? 1, stride: o.stride ?? 1 });
  const bn = new BatchNorm2d({ numFeatures: 8 });
  noGrad(() => {
    const sd = bn.stateDict();
    sd.get('weight')!.copy_(rand([8]).add(0.5));
    sd.get('bias')!.copy_(randn([8]));
    sd.get('running_mean')!.copy_(randn([8]).mul(0.3));
    sd.get('running_var')!.copy_(rand([8]).add(0.2));
  });
  bn.eval();
  conv.eval();
  return { conv, bn };
}

/** Counts calls of bn.forward (the unfused path calls it; the fused one does not). */
function spyForward(bn: BatchNorm2d): { calls: number } {
  const counter = { calls: 0 };
  const original = bn.forward.bind(bn);
  bn.forward = (x: Tensor) => {
    counter.calls++;
    return original(x);
  };
  return counter;
}

const reference = (conv: Conv2d, bn: BatchNorm2d, x: Tensor): number[] => noGrad(() => tidy(() => bn.forward(conv.forward(x)).toNumbers()));

for (const o of [{}, { bias: true }, { groups: 8 }, { groups: 2, stride: 2, bias: true }]) {
  test(`eval-mode fused conv+BN equals the unfused pair within 1e-4 (${JSON.stringify(o)})`, () => {
    manualSeed(3);
    const { conv, bn } = makePair(o);
    const x = randn([2, 8, 8, 8]);
    const expected = reference(conv, bn, x);
    const spy = spyForward(bn);
    const fused = noGrad(() => tidy(() => convBn(conv, bn, x).toNumbers()));
    assert.equal(spy.calls, 0, 'no-grad eval mode takes the fused path');
    assertClose(fused, expected, { atol: 1e-4, rtol: 1e-4, what: 'fused vs unfused' });
    // With the profiler on, fusion is off: the BN runs (and is counted).
    const ops = collectCosts(() => noGrad(() => tidy(() => void convBn(conv, bn, x))));
    assert.deepEqual(ops.map((op) => op.op), ['conv2d', 'batchNorm']);
    assert.equal(spy.calls, 1);
    conv.dispose();
    bn.dispose();
    x.dispose();
  });
}

test('the fused weights are recomputed when a source tensor changes in place', () => {
  manualSeed(4);
  const { conv, bn } = makePair({ bias: true });
  const x = randn([2, 8, 6, 6]);
  const run = () => noGrad(() => tidy(() => convBn(conv, bn, x).toNumbers()));
  const before = run();
  assertClose(before, reference(conv, bn, x), { atol: 1e-4, what: 'initial' });
  const sd = bn.stateDict();
  const steps: [string, () => void][] = [
    ['bn.weight.mul_(2)', () => sd.get('weight')!.mul_(2)],
    ['bn.bias.add_(1)', () => sd.get('bias')!.add_(1)],
    ['bn.running_mean.add_(0.5)', () => sd.get('running_mean')!.add_(0.5)],
    ['bn.running_var.mul_(3)', () => sd.get('running_var')!.mul_(3)],
    ['conv.weight.mul_(-1)', () => conv.weight.mul_(-1)],
    ['conv.bias.add_(0.25)', () => conv.bias!.add_(0.25)],
  ];
  let previous = before;
  for (const [what, change] of steps) {
    noGrad(change);
    const now = run();
    assert.notDeepEqual(now, previous, `${what}: the output changed`);
    assertClose(now, reference(conv, bn, x), { atol: 1e-4, rtol: 1e-4, what });
    previous = now;
  }
  // A BN update in training mode (running stats move) is followed too.
  bn.train();
  noGrad(() => tidy(() => void bn.forward(randn([4, 8, 6, 6]).mul(2).add(1))));
  bn.eval();
  assertClose(run(), reference(conv, bn, x), { atol: 1e-4, rtol: 1e-4, what: 'after a training-mode BN step' });
  // loadStateDict copies in place: also followed.
  const other = makePair({ bias: true });
  noGrad(() => other.bn.stateDict().get('weight')!.mul_(5));
  bn.loadStateDict(other.bn.stateDict());
  assertClose(run(), reference(conv, bn, x), { atol: 1e-4, rtol: 1e-4, what: 'after loadStateDict' });
  // An optimizer step and a write through a view of a parameter are followed too.
  const sgd = new SGD([conv.weight], { lr: 0.5 });
  conv.weight.requiresGrad_(true);
  tidy(() => conv.forward(x).square().sum().backward());
  conv.weight.requiresGrad_(false);
  sgd.step();
  assertClose(run(), reference(conv, bn, x), { atol: 1e-4, rtol: 1e-4, what: 'after an SGD step' });
  noGrad(() => tidy(() => void conv.weight.view(-1).narrow(0, 0, 5).fill_(3)));
  assertClose(run(), reference(conv, bn, x), { atol: 1e-4, rtol: 1e-4, what: 'after a write through a view' });
  // While nothing is written the stamp holds without asking libtorch; after a write it asks once.
  const realMatch = native.versionsMatch;
  let asked = 0;
  native.versionsMatch = (...args: unknown[]) => {
    asked++;
    return realMatch(...args);
  };
  try {
    run();
    run();
    assert.equal(asked, 0, 'no native version check while nothing was written');
    noGrad(() => void randn([3]).add_(1)); // any write, even to another tensor
    run();
    run();
    assert.equal(asked, 1, 'one check after a write, then none');
  } finally {
    native.versionsMatch = realMatch;
  }
  // A disposed module fails as it did before the cache existed, not with its old fold.
  bn.dispose();
  assert.throws(() => run(), (e: Error & { code?: string }) => e.name === 'TorchError' && e.code === 'E_DISPOSED');
});

test('fusion is off in training mode and when gradients to the parameters are wanted', () => {
  manualSeed(5);
  const { conv, bn } = makePair();
  const spy = spyForward(bn);
  const x = randn([2, 8, 6, 6]);
  // Gradients on and parameters requiring them: the unfused path keeps autograd exact.
  tidy(() => {
    const y = convBn(conv, bn, x);
    assert.equal(spy.calls, 1);
    y.sum().backward();
    assert.ok(conv.weight.grad && bn.weight!.grad, 'both conv and BN parameters get gradients');
  });
  conv.zeroGrad();
  bn.zeroGrad();
  bn.train();
  noGrad(() => tidy(() => void convBn(conv, bn, x)));
  assert.equal(spy.calls, 2, 'training-mode BN is never fused');
});

// ResNet-20: conv-BN folds with ReLU and residual epilogues. WRN (pre-activation
// blocks): conv1 -> BN2 -> ReLU folded, the residual add in conv2's store.
for (const [name, make] of [['resnet20', () => createBackbone('resnet20')], ['wrn8_2', () => new WideResNet({ depth: 8, widen: 2 })]] as const)
  test(`a whole eval-mode backbone: fused forward equals the unfused (profiled) forward (${name})`, () => {
    manualSeed(6);
    const m = make();
    // Give the BNs non-trivial statistics with a few training-mode batches.
    m.train();
    noGrad(() => tidy(() => {
      for (let i = 0; i < 3; i++) m.forward(randn([8, 3, 32, 32]).mul(1.5).add(0.3));
    }));
    m.eval();
    const x = randn([3, 3, 32, 32]);
    const fused = noGrad(() => tidy(() => m.forward(x).toNumbers()));
    let unfused: number[] = [];
    const ops = collectCosts(() => noGrad(() => tidy(() => void (unfused = m.forward(x).toNumbers()))));
    assertClose(fused, unfused, { atol: 1e-4, rtol: 1e-4, what: `${name} fused vs unfused` });
    // The profiled (cost-model) pass still sees every BN as its own op.
    const bns = [...m.namedModules()].filter(([, mod]) => mod instanceof BatchNorm2d).length;
    assert.equal(ops.filter((op) => op.op === 'batchNorm').length, bns);
    m.dispose();
  });

test('WRN in training mode: dropout and BN run as their own ops, and gradients reach every conv', () => {
  manualSeed(8);
  const m = new WideResNet({ depth: 8, widen: 2, dropout: 0.3 });
  m.train();
  const drops = [...m.namedModules()].map(([, mod]) => mod).filter((mod): mod is Dropout => mod instanceof Dropout);
  let dropped = 0;
  for (const d of drops) {
    const forward = d.forward.bind(d);
    d.forward = (x: Tensor) => (dropped++, forward(x));
  }
  const ops = collectCosts(() => tidy(() => void m.forward(randn([2, 3, 32, 32]))));
  assert.equal(dropped, drops.length, 'every block ran its dropout');
  const bns = [...m.namedModules()].filter(([, mod]) => mod instanceof BatchNorm2d).length;
  assert.equal(ops.filter((op) => op.op === 'batchNorm').length, bns, 'every BN ran as its own op');
  tidy(() => m.forward(randn([2, 3, 32, 32])).sum().backward());
  for (const [n, t] of m.namedParameters()) if (n.endsWith('conv1.weight') || n.endsWith('conv2.weight')) assert.ok(t.grad, `gradient reaches ${n}`);
  m.dispose();
});

for (const layout of ['contiguous', 'channels_last'] as const)
  test(`the ReLU and residual epilogues equal the separate ops, with and without gradients (${layout})`, () => {
    manualSeed(7);
    const { conv, bn } = makePair({ bias: true });
    const x = randn([3, 8, 7, 7]).contiguous(layout);
    const residual = randn([3, 8, 7, 7]).contiguous(layout);
    const separate = (e: { add?: Tensor; relu?: boolean }): number[] =>
      noGrad(() => tidy(() => {
        let y = bn.forward(conv.forward(x));
        if (e.add) y = y.add(e.add);
        return (e.relu ? y.relu() : y).toNumbers();
      }));
    for (const e of [{ relu: true }, { add: residual }, { add: residual, relu: true }]) {
      const what = `${e.add ? 'add' : ''}${e.relu ? '+relu' : ''}`;
      const expected = separate(e);
      const spy = spyForward(bn);
      const fused = noGrad(() => tidy(() => {
        const y = convBn(conv, bn, x, e);
        assert.equal(y.isContiguous(layout), true, `${what}: the output keeps the ${layout} layout`);
        return y.toNumbers();
      }));
      assert.equal(spy.calls, 0, `${what}: one fused call`);
      assertClose(fused, expected, { atol: 1e-4, rtol: 1e-4, what: `${what} fused` });
      if (e.relu) assert.ok(fused.some((v, i) => v === 0 && expected[i] === 0), `${what}: the ReLU clipped something`);
      // With gradients (training a network with a fused block) the same values, and gradients flow.
      tidy(() => {
        const y = convBn(conv, bn, x, e);
        assertClose(y.toNumbers(), expected, { atol: 1e-4, rtol: 1e-4, what: `${what} with gradients` });
        y.sum().backward();
        assert.ok(conv.weight.grad, `${what}: the conv weight gets a gradient`);
      });
      conv.zeroGrad();
      bn.zeroGrad();
    }
  });
