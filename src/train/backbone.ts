// Training a backbone with the reference recipe: SGD 0.1, momentum 0.9, the
// network's weight decay, x0.1 at epochs 35/60/85 of 100, batch 128, random
// crop + flip. A checkpoint after every epoch; resume continues exactly
// (the data order and the dropout stream are functions of seed and epoch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchLoader } from '../data/batchLoader';
import { subset } from '../data/dataset';
import type { LoadedDataset } from '../data/registry';
import { createBackbone } from '../models/registry';
import { backboneCost } from '../models/cost';
import type { Backbone } from '../models/backbone';
import * as F from '../nn/functional';
import { SGD } from '../optim/sgd';
import { MultiStepLR } from '../optim/schedule';
import { manualSeed } from '../tensor/create';
import { tidy } from '../tensor/scope';
import { saveSafetensors } from '../io/safetensors';
import { writeFileAtomic } from '../util/atomic';
import { createProgress } from '../util/progress';
import { accuracy, augmentedBatchTensors } from './batches';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';

export interface BackboneRecipe {
  arch: string;
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay?: number;
  /** Milestones as fractions of the reference's 100 epochs are scaled to `epochs`. */
  milestones: number[];
  gamma: number;
  batchSize: number;
  seed: number;
  /** Use only this many training samples (class-balanced); for quick runs. */
  trainSubset?: number;
  /** Dropout where the network has it (default the reference's). */
  dropout?: number;
}

export const REFERENCE_RECIPE: Omit<BackboneRecipe, 'arch'> = { epochs: 100, lr: 0.1, momentum: 0.9, milestones: [35, 60, 85], gamma: 0.1, batchSize: 128, seed: 0 };

/** The reference milestones scaled to a shorter run (35/60/85 of 100 -> the same fractions). */
export function scaledMilestones(epochs: number, reference = REFERENCE_RECIPE.milestones, referenceEpochs = 100): number[] {
  return reference.map((m) => Math.max(1, Math.round((m / referenceEpochs) * epochs))).filter((m) => m < epochs || epochs === 1);
}

interface Progress {
  epoch: number; // epochs completed
  history: { epoch: number; loss: number; trainAcc: number; valAcc: number | null; lr: number; seconds: number }[];
}

export interface TrainBackboneResult {
  model: Backbone;
  summary: Record<string, unknown>;
}

export async function trainBackbone(data: LoadedDataset, recipe: BackboneRecipe, o: { outDir: string; resume?: boolean; silent?: boolean; log?: (s: string) => void }): Promise<TrainBackboneResult> {
  fs.mkdirSync(o.outDir, { recursive: true });
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const [c, h] = data.inputShape;
  manualSeed(recipe.seed);
  const model = createBackbone(recipe.arch, { numClasses: data.numClasses, inChannels: c, inputSize: h, dropout: recipe.dropout }).toMemoryFormat('channels_last');
  const wd = recipe.weightDecay ?? model.weightDecay;
  const opt = new SGD(model.parameters(), { lr: recipe.lr, momentum: recipe.momentum, weightDecay: wd });
  const sched = new MultiStepLR(opt, { milestones: recipe.milestones, gamma: recipe.gamma });
  const ckpt = path.join(o.outDir, 'checkpoint.safetensors');
  let progress: Progress = { epoch: 0, history: [] };
  if (o.resume && fs.existsSync(ckpt)) {
    progress = loadCheckpoint<Progress>(ckpt, { modules: { model }, optimizers: { sgd: opt } });
    sched.setEpoch(progress.epoch);
    log(`resumed ${recipe.arch} from ${ckpt} after epoch ${progress.epoch}`);
  } else if (fs.existsSync(ckpt) && !o.resume) {
    log(`note: ${ckpt} exists; starting over (pass --resume to continue it)`);
  }
  const train = recipe.trainSubset ? subset(data.train, recipe.trainSubset, recipe.seed) : data.train;
  const loader = new BatchLoader(train, { batchSize: recipe.batchSize, shuffle: true, seed: recipe.seed, augment: data.augment, dropLast: false, norm: data.norm });

  for (let epoch = progress.epoch; epoch < recipe.epochs; epoch++) {
    model.train();
    manualSeed(recipe.seed * 100003 + epoch); // dropout stream per epoch: a resumed epoch replays it
    const bar = createProgress({ total: loader.numBatches, label: `epoch ${epoch + 1}/${recipe.epochs}`, unit: 'batch', silent: o.silent });
    const t0 = Date.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let batch = 0; batch < loader.numBatches; batch++) {
      tidy(() => {
        const { x, y, n } = augmentedBatchTensors(loader, epoch, batch, 'channels_last');
        opt.zeroGrad();
        const logits = model.forward(x);
        const loss = F.crossEntropy(logits, y);
        loss.backward();
        opt.step();
        lossSum += loss.item() * n;
        correct += logits.argmax(1).eq(y).sum().item();
        seen += n;
      });
      const secs = (Date.now() - t0) / 1000;
      bar.increment(1, { loss: lossSum / seen, acc: (100 * correct) / seen, 'img/s': Math.round(seen / Math.max(secs, 1e-3)) });
    }
    bar.stop();
    const epochLr = opt.lr;
    sched.step();
    const valAcc = data.val ? accuracy(model, data.val, data.norm, { format: 'channels_last' }) : null;
    progress.epoch = epoch + 1;
    progress.history.push({ epoch: epoch + 1, loss: lossSum / seen, trainAcc: (100 * correct) / seen, valAcc, lr: epochLr, seconds: (Date.now() - t0) / 1000 });
    saveCheckpoint(ckpt, { modules: { model }, optimizers: { sgd: opt }, progress });
    log(`epoch ${epoch + 1}: loss ${(lossSum / seen).toFixed(4)}, train ${((100 * correct) / seen).toFixed(2)}%` + (valAcc === null ? '' : `, val ${valAcc.toFixed(2)}%`));
  }

  const testAcc = accuracy(model, data.test, data.norm, { format: 'channels_last' });
  const cost = backboneCost(model);
  const summary = {
    arch: recipe.arch,
    dataset: data.name,
    inputShape: data.inputShape,
    numClasses: data.numClasses,
    recipe: { ...recipe, weightDecay: wd },
    testAccuracy: testAcc,
    history: progress.history,
    trainSeconds: progress.history.reduce((s, e) => s + e.seconds, 0),
    cost: { macs: cost.macs, flops: cost.flops, taps: cost.taps },
    norm: data.norm,
  };
  saveSafetensors(path.join(o.outDir, 'backbone.safetensors'), model.stateDict(), { arch: recipe.arch, dataset: data.name, numClasses: String(data.numClasses), inputShape: JSON.stringify(data.inputShape) });
  writeFileAtomic(path.join(o.outDir, 'summary.json'), JSON.stringify(summary, null, 2));
  opt.dispose();
  return { model, summary };
}
