// Training the ICs of a frozen backbone: Adam 1e-3 with the backbone's weight
// decay, the unweighted sum of the heads' cross-entropies, x0.1 at epoch 15
// of 50, all heads in one pass. Checkpointed every epoch; resumable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchLoader } from '../data/batchLoader';
import { subset } from '../data/dataset';
import type { LoadedDataset } from '../data/registry';
import { sharedExitLogits, type EarlyExitNetwork } from '../exits/network';
import * as F from '../nn/functional';
import { Adam } from '../optim/adam';
import { MultiStepLR } from '../optim/schedule';
import { manualSeed } from '../tensor/create';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { createProgress } from '../util/progress';
import { augmentedBatchTensors } from './batches';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';

export interface HeadRecipe {
  epochs: number;
  lr: number;
  milestones: number[];
  gamma: number;
  batchSize: number;
  weightDecay: number;
  seed: number;
  trainSubset?: number;
}

export const REFERENCE_HEAD_RECIPE = { epochs: 50, lr: 1e-3, milestones: [15], gamma: 0.1, batchSize: 128 };

interface Progress {
  epoch: number;
  history: { epoch: number; loss: number; headAcc: number[]; seconds: number }[];
}

export interface StageOptions {
  /** Checkpoint file; resumed from when it exists and resume is set. */
  checkpoint?: string;
  resume?: boolean;
  silent?: boolean;
  log?: (s: string) => void;
}

export function trainHeads(net: EarlyExitNetwork, data: LoadedDataset, recipe: HeadRecipe, o: StageOptions = {}): Progress {
  return trainSharedHeads([{ net, checkpoint: o.checkpoint }], data, recipe, o)[0];
}

/** One network's heads in trainSharedHeads, with its own checkpoint. */
export interface HeadSet {
  net: EarlyExitNetwork;
  checkpoint?: string;
}

/**
 * Trains the heads of several networks over one frozen backbone (SDN and
 * ZTW heads) in one pass: the backbone runs once per batch for all of them.
 * Each set keeps its own optimizer and checkpoint, and sees exactly the
 * batches it would see alone, so the result equals separate training.
 */
export function trainSharedHeads(sets: HeadSet[], data: LoadedDataset, recipe: HeadRecipe, o: Omit<StageOptions, 'checkpoint'> = {}): Progress[] {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const base = sets[0]?.net;
  if (!base) return [];
  base.freezeBackbone();
  const states = sets.map(({ net, checkpoint }) => {
    const opt = new Adam(net.headParameters(), { lr: recipe.lr, weightDecay: recipe.weightDecay });
    const sched = new MultiStepLR(opt, { milestones: recipe.milestones, gamma: recipe.gamma });
    let progress: Progress = { epoch: 0, history: [] };
    if (checkpoint && o.resume && fs.existsSync(checkpoint)) {
      progress = loadCheckpoint<Progress>(checkpoint, { modules: { net }, optimizers: { adam: opt } });
      sched.setEpoch(progress.epoch);
      if (progress.epoch > 0) log(`resumed IC training from ${checkpoint} after epoch ${progress.epoch}`);
    }
    return { net, checkpoint, opt, sched, progress };
  });
  const train = recipe.trainSubset ? subset(data.train, recipe.trainSubset, recipe.seed) : data.train;
  const loader = new BatchLoader(train, { batchSize: recipe.batchSize, shuffle: true, seed: recipe.seed, augment: data.augment, norm: data.norm });
  const first = Math.min(...states.map((s) => s.progress.epoch));
  for (let epoch = first; epoch < recipe.epochs; epoch++) {
    const active = states.filter((s) => s.progress.epoch === epoch); // a set resumed further along waits
    if (active.length === 0) continue;
    active.forEach((s) => s.net.train());
    manualSeed(recipe.seed * 100003 + epoch);
    const bar = createProgress({ total: loader.numBatches, label: `ICs epoch ${epoch + 1}/${recipe.epochs}`, unit: 'batch', silent: o.silent });
    const t0 = Date.now();
    let seen = 0;
    const lossSum = active.map(() => 0);
    const correct = active.map((s) => new Array<number>(s.net.heads.length).fill(0));
    for (let batch = 0; batch < loader.numBatches; batch++) {
      tidy(() => {
        const { x, y, n } = augmentedBatchTensors(loader, epoch, batch, 'channels_last');
        const all = sharedExitLogits(active.map((s) => s.net), x);
        active.forEach((s, i) => {
          s.opt.zeroGrad();
          const logits = all[i].slice(0, s.net.heads.length);
          const loss = logits.map((l) => F.crossEntropy(l, y)).reduce((a: Tensor, c) => a.add(c));
          loss.backward();
          s.opt.step();
          lossSum[i] += loss.item() * n;
          logits.forEach((l, k) => (correct[i][k] += l.argmax(1).eq(y).sum().item()));
        });
        seen += n;
      });
      const last = correct[0];
      bar.increment(1, { loss: lossSum[0] / seen, 'last IC acc': (100 * last[last.length - 1]) / seen, 'img/s': Math.round(seen / Math.max((Date.now() - t0) / 1000, 1e-3)) });
    }
    bar.stop();
    active.forEach((s, i) => {
      s.sched.step();
      s.progress.epoch = epoch + 1;
      s.progress.history.push({ epoch: epoch + 1, loss: lossSum[i] / seen, headAcc: correct[i].map((c) => (100 * c) / seen), seconds: (Date.now() - t0) / 1000 });
      if (s.checkpoint) {
        fs.mkdirSync(path.dirname(s.checkpoint), { recursive: true });
        saveCheckpoint(s.checkpoint, { modules: { net: s.net }, optimizers: { adam: s.opt }, progress: s.progress });
      }
    });
  }
  states.forEach((s) => s.opt.dispose());
  return states.map((s) => s.progress);
}
