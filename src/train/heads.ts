// Training the ICs of a frozen backbone: Adam 1e-3 with the backbone's weight
// decay, the unweighted sum of the heads' cross-entropies, x0.1 at epoch 15
// of 50, all heads in one pass. Checkpointed every epoch; resumable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchLoader } from '../data/batchLoader';
import { subset } from '../data/dataset';
import type { LoadedDataset } from '../data/registry';
import type { EarlyExitNetwork } from '../exits/network';
import * as F from '../nn/functional';
import { Adam } from '../optim/adam';
import { MultiStepLR } from '../optim/schedule';
import { manualSeed } from '../tensor/create';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { createProgress } from '../util/progress';
import { batchTensors } from './batches';
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
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  net.freezeBackbone();
  const params = net.headParameters();
  const opt = new Adam(params, { lr: recipe.lr, weightDecay: recipe.weightDecay });
  const sched = new MultiStepLR(opt, { milestones: recipe.milestones, gamma: recipe.gamma });
  let progress: Progress = { epoch: 0, history: [] };
  if (o.checkpoint && o.resume && fs.existsSync(o.checkpoint)) {
    progress = loadCheckpoint<Progress>(o.checkpoint, { modules: { net }, optimizers: { adam: opt } });
    sched.setEpoch(progress.epoch);
    if (progress.epoch > 0) log(`resumed IC training from ${o.checkpoint} after epoch ${progress.epoch}`);
  }
  const train = recipe.trainSubset ? subset(data.train, recipe.trainSubset, recipe.seed) : data.train;
  const loader = new BatchLoader(train, { batchSize: recipe.batchSize, shuffle: true, seed: recipe.seed, augment: data.augment, norm: data.norm });
  const M = net.heads.length;
  for (let epoch = progress.epoch; epoch < recipe.epochs; epoch++) {
    net.train();
    manualSeed(recipe.seed * 100003 + epoch);
    const bar = createProgress({ total: loader.numBatches, label: `ICs epoch ${epoch + 1}/${recipe.epochs}`, unit: 'batch', silent: o.silent });
    const t0 = Date.now();
    let lossSum = 0;
    let seen = 0;
    const correct = new Array<number>(M).fill(0);
    for (const b of loader.epoch(epoch)) {
      tidy(() => {
        const { x, y } = batchTensors(b, 'channels_last');
        opt.zeroGrad();
        const logits = net.allLogits(x).slice(0, M);
        const loss = logits.map((l) => F.crossEntropy(l, y)).reduce((a: Tensor, c) => a.add(c));
        loss.backward();
        opt.step();
        lossSum += loss.item() * b.n;
        logits.forEach((l, i) => (correct[i] += l.argmax(1).eq(y).sum().item()));
        seen += b.n;
      });
      bar.increment(1, { loss: lossSum / seen, 'last IC acc': (100 * correct[M - 1]) / seen, 'img/s': Math.round(seen / Math.max((Date.now() - t0) / 1000, 1e-3)) });
    }
    bar.stop();
    sched.step();
    progress.epoch = epoch + 1;
    progress.history.push({ epoch: epoch + 1, loss: lossSum / seen, headAcc: correct.map((c) => (100 * c) / seen), seconds: (Date.now() - t0) / 1000 });
    if (o.checkpoint) {
      fs.mkdirSync(path.dirname(o.checkpoint), { recursive: true });
      saveCheckpoint(o.checkpoint, { modules: { net }, optimizers: { adam: opt }, progress });
    }
  }
  opt.dispose();
  return progress;
}
