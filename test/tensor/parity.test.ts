// Replays tools/make_fixtures.py's cases (PyTorch 1.13 on this machine)
// through ztw: forward values and gradients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tensor, cat, stack, where, manualSeed, rand, randn, randperm, randint, tidy, noGrad, Tensor, type DType } from '../../src/tensor';
import { F } from '../../src/nn';
import { SGD, Adam } from '../../src/optim';
import { assertClose, assertTensorClose } from '../helpers/assert';

interface Enc { shape: number[]; dtype: DType; data: number[] }
interface Case { name: string; op: string; kwargs: Record<string, unknown>; inputs: Enc[]; outputs: Enc[]; weights?: Enc[]; grads?: Record<string, Enc> }
const fixtures = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'engine-parity.json'), 'utf8'));
const dec = (e: Enc): Tensor => tensor(e.data, e.shape, e.dtype);

type OpFn = (x: Tensor[], k: Record<string, any>) => Tensor | Tensor[];
const ops: Record<string, OpFn> = {
  add: ([a, b], k) => a.add(b, k.alpha),
  sub: ([a, b]) => a.sub(b),
  mul: ([a, b]) => a.mul(b),
  div: ([a, b]) => a.div(b),
  pow: ([a, b]) => a.pow(b),
  maximum: ([a, b]) => a.maximum(b),
  exp: ([a]) => a.exp(),
  log: ([a]) => a.log(),
  sqrt: ([a]) => a.sqrt(),
  sigmoid: ([a]) => a.sigmoid(),
  tanh: ([a]) => a.tanh(),
  relu: ([a]) => F.relu(a),
  clamp: ([a], k) => a.clamp(k.min, k.max),
  where: ([c, a, b]) => where(c, a, b),
  gt: ([a, b]) => a.gt(b),
  eq: ([a], k) => a.eq(k.other),
  matmul: ([a, b]) => a.matmul(b),
  linear: ([x, w, b]) => F.linear(x, w, b),
  conv2d: ([x, w, b], k) => F.conv2d(x, w, b, { stride: k.stride, padding: k.padding, dilation: k.dilation, groups: k.groups }),
  batchNormTrain: ([x, w, b, rm, rv]) => {
    const y = F.batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: true });
    return [y, rm, rv];
  },
  batchNormEval: ([x, w, b, rm, rv]) => F.batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: false }),
  layerNorm: ([x, w, b]) => F.layerNorm(x, [x.shape[x.ndim - 1]], w, b),
  maxPool2d: ([x], k) => F.maxPool2d(x, k.kernel_size, { stride: k.stride, padding: k.padding }),
  avgPool2d: ([x], k) => F.avgPool2d(x, k.kernel_size, { stride: k.stride, padding: k.padding }),
  adaptiveAvgPool2d: ([x], k) => F.adaptiveAvgPool2d(x, k.output_size),
  softmax: ([x], k) => F.softmax(x, k.dim),
  logSoftmax: ([x], k) => F.logSoftmax(x, k.dim),
  crossEntropy: ([x, t], k) => F.crossEntropy(x, t, { reduction: k.reduction }),
  nllLoss: ([x, t]) => F.nllLoss(x, t),
  klDiv: ([x, t], k) => F.klDiv(x, t, k.reduction),
  sum: ([a], k) => a.sum(k.dims, k.keepdim),
  mean: ([a], k) => a.mean(k.dims, k.keepdim),
  maxDim: ([a], k) => { const r = a.maxDim(k.dim); return [r.values, r.indices]; },
  argmax: ([a], k) => a.argmax(k.dim),
  logsumexp: ([a], k) => a.logsumexp(k.dims),
  var: ([a], k) => a.var(k.dims),
  cat: ([a, b]) => cat([a, b], 0),
  stack: ([a, b]) => stack([a, b], 1),
  split: ([a], k) => a.split(k.sizes, 0),
  indexSelect: ([a, i]) => a.indexSelect(0, i),
  gather: ([a, i]) => a.gather(1, i),
  maskedSelect: ([a, m]) => a.maskedSelect(m),
  narrow: ([a]) => a.narrow(1, 2, 3),
  view: ([a]) => a.view(2, 12),
  permute: ([a]) => a.permute(2, 0, 1),
  flip: ([a]) => a.flip([2]),
  pad: ([a]) => a.pad([1, 2, 0, 1], 0.5),
};

for (const c of fixtures.cases as Case[]) {
  test(`parity: ${c.name}`, () => {
    const fn = ops[c.op];
    assert.ok(fn, `no replay for op ${c.op}`);
    tidy(() => {
      const inputs = c.inputs.map(dec);
      const gradIdx = Object.keys(c.grads ?? {}).map(Number);
      for (const i of gradIdx) inputs[i].requiresGrad_(true);
      const out = fn(inputs, c.kwargs);
      const outs = Array.isArray(out) ? out : [out];
      assert.equal(outs.length, c.outputs.length);
      outs.forEach((o, i) => {
        assert.equal(o.dtype, c.outputs[i].dtype, `${c.name} output ${i} dtype`);
        assertTensorClose(o, c.outputs[i], { what: `${c.name} output ${i}` });
      });
      if (c.grads && c.weights) {
        const floatOuts = outs.filter((o) => o.dtype === 'float32' && o.requiresGrad);
        const loss = floatOuts.map((o, i) => o.mul(dec(c.weights![i])).sum()).reduce((a, b) => a.add(b));
        loss.backward();
        for (const [i, g] of Object.entries(c.grads)) {
          const grad = inputs[Number(i)].grad;
          assert.ok(grad, `${c.name}: input ${i} has no gradient`);
          assertTensorClose(grad, g, { what: `${c.name} grad ${i}`, atol: 1e-4 });
        }
      }
    });
  });
}

// Without gradients, convolutions take the oneDNN path (native/src/ops_nn.cc):
// the same PyTorch outputs, also for a single image and channels-last.
test('parity: conv2d fixtures through the inference path (oneDNN), single images and channels-last too', () => {
  const convs = (fixtures.cases as Case[]).filter((c) => c.op === 'conv2d');
  assert.ok(convs.length >= 2);
  for (const c of convs)
    noGrad(() =>
      tidy(() => {
        const [x, w, b] = c.inputs.map(dec);
        const run = (xi: Tensor, wi: Tensor): Tensor => ops.conv2d([xi, wi, b], c.kwargs) as Tensor;
        assertTensorClose(run(x, w), c.outputs[0], { what: `${c.name} (inference)` });
        const want = dec(c.outputs[0]);
        for (let n = 0; n < x.shape[0]; n++) {
          const one = run(x.narrow(0, n, 1), w);
          assertClose(one.toNumbers(), want.narrow(0, n, 1).toNumbers(), { atol: 1e-4, what: `${c.name} image ${n} alone` });
        }
        const cl = run(x.contiguous('channels_last'), w.contiguous('channels_last'));
        assertClose(cl.contiguous().toNumbers(), want.toNumbers(), { atol: 1e-4, what: `${c.name} channels-last` });
      }),
    );
});

test('parity: seeded random streams equal PyTorch', () => {
  const r = fixtures.random;
  const draws: Record<string, () => Tensor> = {
    rand: () => rand([6]),
    randn: () => randn([6]),
    randperm: () => randperm(10),
    randint: () => randint(0, 100, [6]),
  };
  for (const [name, draw] of Object.entries(draws)) {
    manualSeed(7);
    assertTensorClose(draw(), r[name], { what: name, atol: 1e-6 });
  }
});

test('parity: optimizer steps equal PyTorch', () => {
  const o = fixtures.optim;
  const makers: Record<string, (p: Tensor[]) => SGD | Adam> = {
    sgd: (p) => new SGD(p, { lr: 0.1 }),
    sgd_momentum_wd: (p) => new SGD(p, { lr: 0.1, momentum: 0.9, weightDecay: 1e-2 }),
    sgd_nesterov: (p) => new SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }),
    adam: (p) => new Adam(p, { lr: 1e-2 }),
    adam_wd: (p) => new Adam(p, { lr: 1e-2, weightDecay: 0.1, betas: [0.8, 0.99] }),
  };
  for (const [name, make] of Object.entries(makers)) {
    const p = dec(o.p0).requiresGrad_(true);
    const opt = make([p]);
    for (const g of o.grads) {
      p.grad = dec(g);
      opt.step();
    }
    assertClose(p.toNumbers(), o[name].data, { what: name, atol: 1e-6 });
    opt.dispose();
  }
});
