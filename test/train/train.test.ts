// Training: a short backbone run on Fashion-MNIST that clearly learns, IC
// training on a frozen backbone (loss down, backbone untouched), resumable IC
// training, and checkpoints. (Killing and resuming `ztw train-backbone` is in
// test/cli/pipeline.test.ts, which reuses that run's weights.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset, subset, type LoadedDataset } from '../../src/data';
import { trainBackbone, scaledMilestones, REFERENCE_RECIPE } from '../../src/train/backbone';
import { trainHeads, trainSharedHeads, type HeadRecipe } from '../../src/train/heads';
import { accuracy, batchTensors } from '../../src/train/batches';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint';
import { EarlyExitNetwork } from '../../src/exits/network';
import { HEAD_CASCADE } from '../../src/exits/methods';
import { CifarResNet } from '../../src/models';
import { BatchLoader } from '../../src/data/batchLoader';
import * as F from '../../src/nn/functional';
import { Adam } from '../../src/optim/adam';
import { loadSafetensors } from '../../src/io/safetensors';
import { manualSeed, randn } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { dispose, tidy } from '../../src/tensor/scope';
import { setNumThreads } from '../../src/tensor/native';
import type { Module } from '../../src/nn/module';
import type { Tensor } from '../../src/tensor/tensor';

setNumThreads(1);
process.env.ZTW_QUIET = '1';

const tmp = (tag: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `ztw-train-${tag}-`));
const quiet = { silent: true, log: () => {} };

let cached: LoadedDataset | undefined;
async function fashion(): Promise<LoadedDataset> {
  return (cached ??= await loadDataset('fashion-mnist'));
}

/** Every parameter and buffer of a module, copied out as plain numbers. */
function snapshot(m: Module): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, t.toNumbers()]));
}

/** Sum over the ICs of their mean cross-entropy on a fixed set (eval mode, no augmentation). */
function headsLoss(net: EarlyExitNetwork, data: LoadedDataset, n: number): number {
  const loader = new BatchLoader(subset(data.test, n, 5), { batchSize: n, shuffle: false, norm: data.norm });
  net.eval();
  let loss = 0;
  noGrad(() => {
    for (const b of loader.epoch(0))
      tidy(() => {
        const { x, y } = batchTensors(b, 'channels_last');
        const logits = net.allLogits(x).slice(0, net.heads.length);
        loss += logits.reduce((s, l) => s + F.crossEntropy(l, y).item(), 0);
      });
  });
  return loss;
}

test('scaledMilestones: 35/60/85 of 100 epochs keep their fractions', () => {
  assert.deepEqual(scaledMilestones(100), [35, 60, 85]);
  assert.deepEqual(scaledMilestones(20), [7, 12, 17]);
  assert.deepEqual(scaledMilestones(3), [1, 2]);
  assert.deepEqual(scaledMilestones(50, [15], 50), [15]);
  assert.deepEqual(REFERENCE_RECIPE.milestones, [35, 60, 85]);
});

// 3 epochs at lr 0.1 (x0.1 for the last): seeds 0-3 give 74, 76, 75, 70% here. Two epochs are
// not enough for a safe margin: this ResNet-20 (and the same network in PyTorch) reaches only
// 60-70% after 94 steps, and eval-mode accuracy swings while the lr is high.
test('a short Fashion-MNIST run learns: ResNet-20, 3,000 samples, 3 epochs, > 60% on 1,000 test images', async () => {
  const full = await fashion();
  assert.deepEqual(full.inputShape, [1, 32, 32]);
  assert.equal(full.numClasses, 10);
  const data: LoadedDataset = { ...full, train: subset(full.train, 3000, 0), val: undefined, test: subset(full.test, 1000, 0) };
  const dir = tmp('learn');
  const { model, summary } = await trainBackbone(data, { ...REFERENCE_RECIPE, arch: 'resnet20', epochs: 3, milestones: [2], batchSize: 64, seed: 0 }, { outDir: dir, ...quiet });
  const acc = summary.testAccuracy as number;
  assert.ok(acc > 60, `test accuracy ${acc}% after 3 epochs (chance is 10%)`);
  const history = summary.history as { loss: number; trainAcc: number; lr: number }[];
  assert.equal(history.length, 3);
  assert.ok(history[2].loss < history[1].loss && history[1].loss < history[0].loss, `training loss falls: ${history.map((h) => h.loss)}`);
  assert.deepEqual(history.map((h) => h.lr.toPrecision(3)), ['0.100', '0.100', '0.0100'], 'the lr each epoch used: x0.1 from the third epoch (milestone 2)');
  // The summary's accuracy is the model's, and the saved weights are the model's.
  assert.equal(accuracy(model, data.test, data.norm, { format: 'channels_last' }), acc);
  const { tensors, metadata } = loadSafetensors(path.join(dir, 'backbone.safetensors'));
  assert.deepEqual(metadata.arch, 'resnet20');
  assert.deepEqual(metadata.dataset, 'fashion-mnist');
  assert.deepEqual(JSON.parse(metadata.inputShape), [1, 32, 32]);
  for (const [k, t] of model.stateDict()) assert.deepEqual(tensors.get(k)?.toNumbers(), t.toNumbers(), `saved ${k}`);
  dispose([...tensors.values()]);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoint.safetensors')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')).testAccuracy, acc);
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

const HEAD_RECIPE: HeadRecipe = { epochs: 3, lr: 1e-3, milestones: [2], gamma: 0.1, batchSize: 128, weightDecay: 1e-4, seed: 0 };

test('trainHeads lowers the ICs\' loss and leaves the backbone (weights and BN statistics) untouched', async () => {
  const full = await fashion();
  const data: LoadedDataset = { ...full, train: subset(full.train, 640, 1) };
  manualSeed(10);
  const bb = new CifarResNet({ depth: 8, inChannels: 1 }).toMemoryFormat('channels_last');
  // Non-trivial BN statistics, as a trained backbone has.
  bb.train();
  noGrad(() => tidy(() => void bb.forward(randn([16, 1, 32, 32]).add(0.5))));
  const before = snapshot(bb);
  const net = new EarlyExitNetwork(bb, { cascade: HEAD_CASCADE.ztw });
  const lossBefore = headsLoss(net, data, 256);
  const progress = trainHeads(net, data, HEAD_RECIPE, quiet);
  const lossAfter = headsLoss(net, data, 256);
  assert.equal(progress.epoch, 3);
  assert.equal(progress.history.length, 3);
  assert.equal(progress.history[0].headAcc.length, 3, 'one accuracy per IC');
  assert.ok(lossAfter < lossBefore - 0.3, `held-out sum of IC losses ${lossBefore} -> ${lossAfter}`);
  assert.ok(progress.history[2].loss < progress.history[0].loss, 'the training loss falls');
  const after = snapshot(bb);
  assert.deepEqual([...after.keys()], [...before.keys()]);
  for (const [k, v] of before) assert.deepEqual(after.get(k), v, `backbone ${k} unchanged`);
  assert.ok([...before.keys()].some((k) => k.endsWith('running_mean')) && [...before.keys()].some((k) => k.endsWith('num_batches_tracked')));
  assert.equal(bb.training, false);
  assert.ok(bb.parameters().every((p) => !p.requiresGrad), 'frozen');
  net.dispose();
});

test('trainSharedHeads: SDN and ZTW heads in one backbone pass end exactly as trained apart; a set resumed ahead waits', async () => {
  const full = await fashion();
  const data: LoadedDataset = { ...full, train: subset(full.train, 256, 3) };
  const recipe: HeadRecipe = { ...HEAD_RECIPE, epochs: 2, milestones: [1] };
  manualSeed(30);
  const bb = new CifarResNet({ depth: 8, inChannels: 1 }).toMemoryFormat('channels_last');
  const make = (kind: 'sdn' | 'ztw'): EarlyExitNetwork => {
    manualSeed(kind === 'sdn' ? 31 : 32);
    const net = new EarlyExitNetwork(bb, { cascade: HEAD_CASCADE[kind] });
    net.heads.forEach((h) => h.toMemoryFormat('channels_last'));
    return net;
  };
  const apart = [make('sdn'), make('ztw')];
  apart.forEach((n) => trainHeads(n, data, recipe, quiet));
  const dir = tmp('shared');
  const together = [make('sdn'), make('ztw')];
  // The ZTW set has one epoch done already (resumed ahead): it skips epoch 1 and joins for epoch 2.
  trainHeads(together[1], data, { ...recipe, epochs: 1 }, { ...quiet, checkpoint: path.join(dir, 'ztw.ckpt') });
  const progress = trainSharedHeads([{ net: together[0] }, { net: together[1], checkpoint: path.join(dir, 'ztw.ckpt') }], data, recipe, { ...quiet, resume: true });
  assert.deepEqual(progress.map((p) => p.epoch), [2, 2]);
  assert.deepEqual(progress.map((p) => p.history.length), [2, 2]);
  apart.forEach((a, i) => {
    const ha = snapshot(a);
    const ht = snapshot(together[i]);
    for (const [k, v] of ha) if (k.startsWith('heads.')) assert.deepEqual(ht.get(k), v, `${['sdn', 'ztw'][i]} ${k}: together = apart`);
  });
  const other = new EarlyExitNetwork(new CifarResNet({ depth: 8, inChannels: 1 }), { cascade: HEAD_CASCADE.sdn });
  assert.throws(() => trainSharedHeads([{ net: apart[0] }, { net: other }], data, recipe, quiet), /same backbone and taps/);
  fs.rmSync(dir, { recursive: true, force: true });
  other.dispose();
  bb.dispose();
});

test('trainHeads resumes from its checkpoint: 1 epoch + resume = 2 epochs uninterrupted', async () => {
  const full = await fashion();
  const data: LoadedDataset = { ...full, train: subset(full.train, 384, 2) };
  const recipe: HeadRecipe = { ...HEAD_RECIPE, epochs: 2, milestones: [1] };
  const dir = tmp('heads');
  const make = (initSeed: number): EarlyExitNetwork => {
    manualSeed(initSeed);
    const net = new EarlyExitNetwork(new CifarResNet({ depth: 8, inChannels: 1 }).toMemoryFormat('channels_last'), { cascade: HEAD_CASCADE.ztw });
    net.heads.forEach((h) => h.toMemoryFormat('channels_last'));
    return net;
  };
  // The backbone weights must be the same in all three networks: the first make() fixes them.
  const a = make(20);
  const backboneState = a.backbone.stateDict();
  trainHeads(a, data, recipe, { ...quiet, checkpoint: path.join(dir, 'a.ckpt') });

  const b = make(20);
  b.backbone.loadStateDict(backboneState);
  trainHeads(b, data, { ...recipe, epochs: 1 }, { ...quiet, checkpoint: path.join(dir, 'b.ckpt') });
  // A fresh process would rebuild everything: different head initialisation, then resume.
  const c = make(99);
  c.backbone.loadStateDict(backboneState);
  const logs: string[] = [];
  const p = trainHeads(c, data, recipe, { silent: true, log: (s) => logs.push(s), checkpoint: path.join(dir, 'b.ckpt'), resume: true });
  assert.ok(logs.some((l) => /resumed IC training .* after epoch 1/.test(l)), logs.join('\n'));
  assert.equal(p.epoch, 2);
  assert.equal(p.history.length, 2);
  const ha = snapshot(a);
  const hc = snapshot(c);
  for (const [k, v] of ha) if (k.startsWith('heads.')) assert.deepEqual(hc.get(k), v, `${k}: resumed = uninterrupted`);
  for (const n of [a, b, c]) n.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('checkpoints restore modules, optimizer state and progress', () => {
  manualSeed(30);
  const m = new CifarResNet({ depth: 8 });
  const opt = new Adam(m.parameters(), { lr: 1e-3 });
  tidy(() => {
    F.crossEntropy(m.forward(randn([2, 3, 32, 32])), randn([2, 10]).argmax(1)).backward();
    opt.step();
  });
  const dir = tmp('ckpt');
  const file = path.join(dir, 'c.safetensors');
  saveCheckpoint(file, { modules: { model: m }, optimizers: { adam: opt }, progress: { epoch: 7, note: 'x' } });
  manualSeed(31);
  const m2 = new CifarResNet({ depth: 8 });
  const opt2 = new Adam(m2.parameters(), { lr: 5 });
  const progress = loadCheckpoint<{ epoch: number; note: string }>(file, { modules: { model: m2 }, optimizers: { adam: opt2 } });
  assert.deepEqual(progress, { epoch: 7, note: 'x' });
  assert.deepEqual(snapshot(m2), snapshot(m));
  assert.equal(opt2.lr, 1e-3);
  assert.equal(opt2.stepCount, 1);
  const s1 = opt.stateDict().tensors;
  const s2 = opt2.stateDict().tensors;
  assert.deepEqual([...s2.keys()].sort(), [...s1.keys()].sort());
  for (const [k, t] of s1) assert.deepEqual(s2.get(k)!.toNumbers(), (t as Tensor).toNumbers(), `optimizer ${k}`);
  // A checkpoint without the optimizer's state is refused.
  assert.throws(() => loadCheckpoint(file, { modules: { model: m2 }, optimizers: { sgd: opt2 } }), /no state for optimizer 'sgd'/);
  m.dispose();
  m2.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
