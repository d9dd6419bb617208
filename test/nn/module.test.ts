// nn.Module: the parameter/buffer tree, state dicts, train/eval, freeze,
// PyTorch's default initialisation and channels-last parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, liveTensors, noGrad, tidy, Tensor } from '../../src/tensor';
import * as nn from '../../src/nn';
import { F, StateDictError } from '../../src/nn';
import { SGD } from '../../src/optim';
import { assertClose } from '../helpers/assert';

class Net extends nn.Module {
  readonly features: nn.Sequential;
  readonly head: nn.Linear;
  constructor() {
    super();
    this.features = this.registerModule(
      'features',
      new nn.Sequential(
        new nn.Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, bias: false }),
        new nn.BatchNorm2d({ numFeatures: 8 }),
        new nn.ReLU(),
        new nn.Conv2d({ inChannels: 8, outChannels: 4, kernelSize: 3, stride: 2 }),
        new nn.AdaptiveAvgPool2d({ outputSize: 1 }),
        new nn.Flatten(),
      ),
    );
    this.head = this.registerModule('head', new nn.Linear({ inFeatures: 4, outFeatures: 5 }));
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.features.forward(x));
  }
}

const values = (m: nn.Module): [string, number[]][] => [...m.stateDict()].map(([k, t]) => [k, t.toNumbers()]);

test('nested modules: dotted names, shapes, counts and buffers', () => {
  const net = new Net();
  const params = [...net.namedParameters()].map(([k, t]) => [k, t.shape]);
  assert.deepEqual(params, [
    ['features.0.weight', [8, 3, 3, 3]],
    ['features.1.weight', [8]],
    ['features.1.bias', [8]],
    ['features.3.weight', [4, 8, 3, 3]],
    ['features.3.bias', [4]],
    ['head.weight', [5, 4]],
    ['head.bias', [5]],
  ]);
  assert.equal(net.numParameters(), 8 * 27 + 8 + 8 + 4 * 72 + 4 + 20 + 5);
  assert.equal(net.parameters().length, 7);
  assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf && p.dtype === 'float32'));
  const buffers = [...net.namedBuffers()].map(([k, t]) => [k, t.shape, t.dtype, t.requiresGrad]);
  assert.deepEqual(buffers, [
    ['features.1.running_mean', [8], 'float32', false],
    ['features.1.running_var', [8], 'float32', false],
    ['features.1.num_batches_tracked', [], 'int64', false],
  ]);
  assert.deepEqual([...net.namedModules()].map(([k]) => k), ['', 'features', 'features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'features.5', 'head']);
  assert.deepEqual([...net.namedChildren()].map(([k]) => k), ['features', 'head']);
  assert.deepEqual([...net.stateDict().keys()].sort(), [...params.map(([k]) => k as string), ...buffers.map(([k]) => k as string)].sort());
  // stateDict holds the live tensors, not copies.
  const w = net.stateDict().get('head.bias')!;
  noGrad(() => w.fill_(3));
  assert.deepEqual(net.head.bias!.toNumbers(), [3, 3, 3, 3, 3]);
  // BatchNorm starts at the identity with unit running variance.
  const bn = net.features.layers[1] as nn.BatchNorm2d;
  assert.deepEqual(bn.weight!.toNumbers(), new Array(8).fill(1));
  assert.deepEqual(bn.bias!.toNumbers(), new Array(8).fill(0));
  assert.deepEqual(bn.runningMean!.toNumbers(), new Array(8).fill(0));
  assert.deepEqual(bn.runningVar!.toNumbers(), new Array(8).fill(1));
  // Optional parts that are switched off are absent from the tree.
  const plain = new nn.BatchNorm2d({ numFeatures: 3, affine: false, trackRunningStats: false });
  assert.equal(plain.stateDict().size, 0);
  assert.equal(new nn.Linear({ inFeatures: 2, outFeatures: 2, bias: false }).parameters().length, 1);
  assert.deepEqual(net.forward(randn([2, 3, 8, 8])).shape, [2, 5]);
});

test('stateDict round trip into a fresh model gives identical outputs', () => {
  manualSeed(1);
  const a = new Net();
  // Train a little so that weights and running statistics move off their init.
  const opt = new SGD(a.parameters(), { lr: 0.1, momentum: 0.9 });
  for (let i = 0; i < 3; i++)
    tidy(() => {
      opt.zeroGrad();
      F.crossEntropy(a.forward(randn([6, 3, 8, 8])), tensor([0, 1, 2, 3, 4, 0], undefined, 'int64')).backward();
      opt.step();
    });
  manualSeed(2);
  const b = new Net();
  const x = randn([4, 3, 8, 8]);
  a.eval();
  b.eval();
  const ya = a.forward(x).toNumbers();
  assert.notDeepEqual(b.forward(x).toNumbers(), ya, 'different initialisations differ');
  const before = liveTensors();
  b.loadStateDict(a.stateDict());
  assert.equal(liveTensors(), before, 'loading copies into the existing tensors');
  assert.deepEqual(b.forward(x).toNumbers(), ya);
  assert.deepEqual(values(b), values(a));
  assert.equal(b.stateDict().get('features.1.num_batches_tracked')!.item(), 3);
  // The copy is independent of its source.
  noGrad(() => a.head.weight.fill_(0));
  assert.notDeepEqual(b.head.weight.toNumbers(), a.head.weight.toNumbers());
  // Gradients still reach b's own parameters after a load.
  b.train();
  F.crossEntropy(b.forward(x), tensor([1, 1, 1, 1], undefined, 'int64')).backward();
  assert.ok(b.parameters().every((p) => p.grad !== undefined));
  // A plain object works as well as a Map, and float64 values are converted to the parameter dtype.
  const c = new nn.Linear({ inFeatures: 2, outFeatures: 1 });
  c.loadStateDict({ weight: tensor([[0.25, 0.5]], undefined, 'float64'), bias: tensor([1], undefined, 'float64') });
  assert.equal(c.weight.dtype, 'float32');
  assert.deepEqual(c.forward(tensor([[4, 2]])).toNumbers(), [3]);
});

test('loadStateDict strict=false ignores missing and unexpected keys but rejects size mismatch', () => {
  const m = new nn.Sequential(new nn.Linear({ inFeatures: 3, outFeatures: 2 }), new nn.Linear({ inFeatures: 2, outFeatures: 1 }));
  const orig = values(m);
  const partial = new Map([
    ['0.weight', tensor([[1, 2, 3], [4, 5, 6]])],
    ['extra.weight', tensor([1])],
  ]);
  assert.throws(() => m.loadStateDict(partial), (e: unknown) => e instanceof StateDictError && e.missing.length === 3 && e.unexpected[0] === 'extra.weight');
  assert.deepEqual(values(m), orig, 'strict failure copies nothing');
  m.loadStateDict(partial, { strict: false });
  assert.deepEqual(m.stateDict().get('0.weight')!.toNumbers(), [1, 2, 3, 4, 5, 6]);
  for (const k of ['0.bias', '1.weight', '1.bias'])
    assert.deepEqual(m.stateDict().get(k)!.toNumbers(), orig.find(([n]) => n === k)![1], `${k} untouched`);
  const wrong = new Map([['1.weight', tensor([[1, 2, 3]])], ['0.bias', tensor([9, 9])]]);
  assert.throws(
    () => m.loadStateDict(wrong, { strict: false }),
    (e: unknown) => e instanceof StateDictError && e.mismatched.length === 1 && e.mismatched[0] === '1.weight: expected [1,2], got [1,3]',
  );
  assert.notDeepEqual(m.stateDict().get('0.bias')!.toNumbers(), [9, 9], 'a rejected load copies nothing, even with strict=false');
});

test('train()/eval() propagate and switch BatchNorm between batch and running statistics', () => {
  const net = new Net();
  assert.ok([...net.namedModules()].every(([, m]) => m.training));
  assert.equal(net.eval(), net);
  assert.ok([...net.namedModules()].every(([, m]) => !m.training));
  net.train();
  assert.ok([...net.namedModules()].every(([, m]) => m.training));
  net.train(false);
  assert.ok([...net.namedModules()].every(([, m]) => !m.training));

  manualSeed(3);
  const bn = new nn.BatchNorm2d({ numFeatures: 2, momentum: 0.1 });
  const x = randn([4, 2, 3, 3]).mul(tensor([2, 0.5]).view(1, 2, 1, 1)).add(tensor([3, -1]).view(1, 2, 1, 1));
  // Batch statistics per channel, as PyTorch's running-stat update uses them.
  const mean = x.mean([0, 2, 3]).toNumbers();
  const unbiasedVar = x.var([0, 2, 3], true).toNumbers();
  const biasedVar = x.var([0, 2, 3], false).toNumbers();

  const yTrain = bn.forward(x);
  // Training mode normalises with the batch statistics...
  assertClose(yTrain.mean([0, 2, 3]).toNumbers(), [0, 0], { atol: 1e-5, what: 'train-mode mean' });
  assertClose(yTrain.var([0, 2, 3], false).toNumbers(), biasedVar.map((v) => v / (v + 1e-5)), { atol: 1e-4, what: 'train-mode var' });
  // ...and moves the running statistics by momentum.
  assertClose(bn.runningMean!.toNumbers(), mean.map((m) => 0.1 * m), { what: 'running mean' });
  assertClose(bn.runningVar!.toNumbers(), unbiasedVar.map((v) => 0.9 + 0.1 * v), { what: 'running var' });
  assert.equal(bn.stateDict().get('num_batches_tracked')!.item(), 1);

  bn.eval();
  const rm = bn.runningMean!.toNumbers();
  const rv = bn.runningVar!.toNumbers();
  const yEval = bn.forward(x);
  // Eval mode uses the running statistics: a different output, computed from them.
  assert.notDeepEqual(yEval.toNumbers(), yTrain.toNumbers());
  const xs = x.toNumbers();
  const expected = xs.map((v, i) => {
    const c = Math.floor(i / 9) % 2;
    return (v - rm[c]) / Math.sqrt(rv[c] + 1e-5);
  });
  assertClose(yEval.toNumbers(), expected, { atol: 1e-5, what: 'eval-mode output' });
  // ...and leaves them alone.
  bn.forward(x.mul(5));
  assert.deepEqual(bn.runningMean!.toNumbers(), rm);
  assert.deepEqual(bn.runningVar!.toNumbers(), rv);
  assert.equal(bn.stateDict().get('num_batches_tracked')!.item(), 1);
  // Without running statistics, eval mode has to use the batch.
  const noStats = new nn.BatchNorm2d({ numFeatures: 2, trackRunningStats: false }).eval();
  assertClose(noStats.forward(x).mean([0, 2, 3]).toNumbers(), [0, 0], { atol: 1e-5, what: 'no running stats' });
});

test('freeze() turns gradients off without touching the training mode', () => {
  const net = new Net();
  net.eval();
  assert.equal(net.freeze(), net);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
  assert.ok([...net.namedModules()].every(([, m]) => !m.training), 'still in eval mode');
  net.train();
  net.freeze();
  assert.ok([...net.namedModules()].every(([, m]) => m.training), 'still in train mode');
  const bn = net.features.layers[1] as nn.BatchNorm2d;
  const rm = bn.runningMean!.toNumbers();
  const y = net.forward(randn([2, 3, 8, 8]));
  assert.equal(y.requiresGrad, false, 'a frozen model records no graph');
  assert.notDeepEqual(bn.runningMean!.toNumbers(), rm, 'a frozen model in train mode still updates BatchNorm statistics');
  // Freezing a part: gradients reach only the rest.
  net.unfreeze();
  net.features.freeze();
  F.crossEntropy(net.forward(randn([2, 3, 8, 8])), tensor([0, 1], undefined, 'int64')).backward();
  assert.ok(net.head.parameters().every((p) => p.grad !== undefined));
  assert.ok(net.features.parameters().every((p) => p.grad === undefined));
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === undefined));
});

test("PyTorch's default initialisation bounds", () => {
  manualSeed(5);
  const check = (w: Tensor, bound: number, what: string): void => {
    const v = w.toNumbers();
    const maxAbs = Math.max(...v.map(Math.abs));
    assert.ok(maxAbs <= bound, `${what}: |w| max ${maxAbs} > ${bound}`);
    assert.ok(maxAbs > 0.9 * bound, `${what}: |w| max ${maxAbs} does not reach ${bound}: not U(-b, b)`);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    // Four standard errors of U(-b, b)'s sample mean and variance (kurtosis 1.8).
    const n = v.length;
    assert.ok(Math.abs(mean) < (4 * bound) / Math.sqrt(3 * n), `${what}: mean ${mean}`);
    assert.ok(Math.abs(variance / (bound ** 2 / 3) - 1) < 4 * Math.sqrt(0.8 / n), `${what}: variance ${variance} vs ${bound ** 2 / 3}`);
  };
  const lin = new nn.Linear({ inFeatures: 50, outFeatures: 200 });
  check(lin.weight, 1 / Math.sqrt(50), 'Linear weight');
  check(lin.bias!, 1 / Math.sqrt(50), 'Linear bias');
  const conv = new nn.Conv2d({ inChannels: 4, outChannels: 300, kernelSize: 3 });
  check(conv.weight, 1 / Math.sqrt(36), 'Conv2d weight');
  check(conv.bias!, 1 / Math.sqrt(36), 'Conv2d bias');
  const grouped = new nn.Conv2d({ inChannels: 8, outChannels: 400, kernelSize: [1, 3], groups: 4 });
  assert.deepEqual(grouped.weight.shape, [400, 2, 1, 3]);
  check(grouped.weight, 1 / Math.sqrt(6), 'grouped Conv2d weight (fan_in per group)');
  assert.throws(() => new nn.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 1, groups: 2 }), /not divisible by groups/);
});

test("toMemoryFormat('channels_last') keeps outputs and gradients, and frees the old tensors", () => {
  manualSeed(6);
  const net = new Net();
  net.eval();
  const x = randn([2, 3, 8, 8]);
  const ref = net.forward(x).toNumbers();
  const before = liveTensors();
  assert.equal(net.toMemoryFormat('channels_last'), net);
  assert.equal(liveTensors(), before, 'each converted tensor replaces its original');
  const conv0 = net.features.layers[0] as nn.Conv2d;
  const conv3 = net.features.layers[3] as nn.Conv2d;
  assert.equal(conv0.weight.isContiguous('channels_last'), true);
  assert.equal(conv3.weight.isContiguous('channels_last'), true);
  assert.deepEqual(conv0.weight.strides, [27, 1, 9, 3]);
  assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf), 'still trainable leaves');
  assertClose(net.forward(x).toNumbers(), ref, { atol: 1e-5, what: 'channels-last params' });
  assertClose(net.forward(x.contiguous('channels_last')).toNumbers(), ref, { atol: 1e-5, what: 'channels-last params and input' });
  // Training still works on the replaced parameters.
  net.train();
  F.crossEntropy(net.forward(x), tensor([0, 4], undefined, 'int64')).backward();
  assert.ok(net.parameters().every((p) => p.grad !== undefined));
  net.eval();
  net.toMemoryFormat('contiguous');
  assert.equal(conv0.weight.isContiguous(), true);
  assert.deepEqual(conv0.weight.strides, [27, 9, 3, 1]);
});

test('Module.dispose releases every parameter and buffer', () => {
  const base = liveTensors();
  const net = new Net();
  const n = net.stateDict().size;
  assert.equal(liveTensors(), base + n);
  net.dispose();
  assert.equal(liveTensors(), base);
});
