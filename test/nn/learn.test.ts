// End to end: a small CNN learns a synthetic image task, and SGD steps lower the loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, manualSeed, noGrad, tidy, setNumThreads, Tensor } from '../../src/tensor';
import * as nn from '../../src/nn';
import { F } from '../../src/nn';
import { SGD, Adam } from '../../src/optim';
import { mulberry32 } from '../helpers/random';

setNumThreads(1); // tiny batches; avoids OpenMP spin-waits on a shared 2-core machine

const rng = mulberry32;

const S = 12; // image side
/**
 * n noisy 12x12 images; the class (0..3) is the quadrant holding a bright 3x3
 * blob at a random place inside it. Noise is strong (std 0.5 vs blob +1.5).
 */
function quadrantData(n: number, seed: number): { x: Tensor; y: Tensor } {
  const r = rng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const xs = new Float32Array(n * S * S);
  const ys = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const cls = Math.floor(r() * 4);
    ys[i] = BigInt(cls);
    const img = xs.subarray(i * S * S, (i + 1) * S * S);
    for (let p = 0; p < img.length; p++) img[p] = 0.5 * gauss();
    const half = S / 2;
    const top = (cls >> 1) * half + Math.floor(r() * (half - 2));
    const left = (cls & 1) * half + Math.floor(r() * (half - 2));
    for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) img[(top + dy) * S + left + dx] += 1.5;
  }
  return { x: tensor(xs, [n, 1, S, S]), y: tensor(ys, [n]) };
}

function makeCnn(): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d({ inChannels: 1, outChannels: 8, kernelSize: 3, padding: 1 }),
    new nn.BatchNorm2d({ numFeatures: 8 }),
    new nn.ReLU(),
    new nn.MaxPool2d({ kernelSize: 2 }),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 8 * (S / 2) * (S / 2), outFeatures: 4 }),
  );
}

function accuracy(model: nn.Module, x: Tensor, y: Tensor): number {
  return noGrad(() => tidy(() => (model.forward(x) as Tensor).argmax(1).eq(y).float().mean().item()));
}

test('a small CNN learns which quadrant holds the blob (> 90% held out)', () => {
  manualSeed(0);
  const train = quadrantData(512, 1);
  const heldOut = quadrantData(256, 2);
  const model = makeCnn();
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  model.eval();
  const initial = accuracy(model, heldOut.x, heldOut.y);
  model.train();
  const bs = 32;
  const start = Date.now();
  for (let epoch = 0; epoch < 4; epoch++) {
    for (let b = 0; b < 512 / bs; b++) {
      tidy(() => {
        const xb = train.x.narrow(0, b * bs, bs);
        const yb = train.y.narrow(0, b * bs, bs);
        opt.zeroGrad();
        F.crossEntropy(model.forward(xb), yb).backward();
        opt.step();
      });
    }
  }
  model.eval();
  const acc = accuracy(model, heldOut.x, heldOut.y);
  const trainAcc = accuracy(model, train.x, train.y);
  assert.ok(initial < 0.5, `untrained accuracy ${initial} should be near chance`);
  assert.ok(acc > 0.9, `held-out accuracy ${acc} (train ${trainAcc}, ${Date.now() - start} ms)`);
});

test('SGD and Adam steps lower the loss on a fixed batch and move every parameter', () => {
  for (const make of [
    (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9 }),
    (ps: Tensor[]) => new Adam(ps, { lr: 0.003 }),
  ]) {
    manualSeed(3);
    const { x, y } = quadrantData(64, 7);
    const model = makeCnn();
    const opt = make(model.parameters());
    const lossOf = (): number => noGrad(() => tidy(() => F.crossEntropy(model.forward(x), y).item()));
    const snapshot = model.parameters().map((p) => p.toNumbers());
    const losses = [lossOf()];
    for (let i = 0; i < 10; i++) {
      tidy(() => {
        opt.zeroGrad();
        const loss = F.crossEntropy(model.forward(x), y);
        loss.backward();
        for (const p of model.parameters()) assert.ok(p.grad!.abs().sum().item() > 0, 'every parameter gets a gradient');
        opt.step();
      });
      losses.push(lossOf());
    }
    const name = opt.constructor.name;
    assert.ok(losses[1] < losses[0], `${name}: one step lowers the loss: ${losses[0]} -> ${losses[1]}`);
    assert.ok(losses[10] < 0.5 * losses[0], `${name}: ten steps halve it: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    model.parameters().forEach((p, i) => assert.notDeepEqual(p.toNumbers(), snapshot[i], `${name}: parameter ${i} moved`));
    assert.equal(opt.stepCount, 10);
  }
});
