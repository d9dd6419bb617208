// ztw train-backbone --arch resnet56 --data cifar10 [--epochs N] [--resume]
import type { Command } from 'commander';
import * as path from 'node:path';
import { loadDataset } from '../data/registry';
import { REFERENCE_RECIPE, scaledMilestones, trainBackbone } from '../train/backbone';
import { intList, positiveInt, positiveNumber, probability } from './args';

export function registerTrainBackbone(program: Command): void {
  program
    .command('train-backbone')
    .description('train a backbone with the reference recipe (SGD 0.1, momentum 0.9, x0.1 at 35/60/85 of 100 epochs, batch 128)')
    .requiredOption('--arch <name>', 'resnet56 | vgg16bn | wrn32_4 | mobilenet | ...')
    .option('--data <name>', 'fashion-mnist | mnist | cifar10 | cifar100 | tiny-imagenet | imagefolder', 'fashion-mnist')
    .option('--root <path>', 'data location (CIFAR archive or folder, Tiny ImageNet, ImageFolder)')
    .option('--download', 'download CIFAR if it is not in the cache')
    .option('--epochs <n>', 'epochs (milestones scale with it)', String(REFERENCE_RECIPE.epochs))
    .option('--milestones <list>', 'lr x0.1 at these epochs (default: 35,60,85 scaled to --epochs)')
    .option('--lr <x>', 'learning rate', String(REFERENCE_RECIPE.lr))
    .option('--batch <n>', 'batch size', String(REFERENCE_RECIPE.batchSize))
    .option('--weight-decay <x>', 'weight decay (default: the network\'s reference value)')
    .option('--train-subset <n>', 'train on this many samples only (quick runs)')
    .option('--dropout <p>', 'dropout where the network has it (default: the reference\'s; 0 suits short WRN runs)')
    .option('--seed <n>', 'seed', '0')
    .option('--out <dir>', 'output directory (default runs/<data>/<arch>/backbone)')
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--json', 'print the summary as one JSON document')
    .action(async (o) => {
      const epochs = positiveInt('--epochs', o.epochs);
      const data = await loadDataset(o.data, { root: o.root, download: o.download });
      const out = o.out ?? path.join('runs', o.data, o.arch, 'backbone');
      const { summary } = await trainBackbone(
        data,
        {
          arch: o.arch,
          epochs,
          lr: positiveNumber('--lr', o.lr),
          momentum: REFERENCE_RECIPE.momentum,
          weightDecay: o.weightDecay === undefined ? undefined : Number(o.weightDecay),
          milestones: o.milestones ? intList('--milestones', o.milestones) : scaledMilestones(epochs),
          gamma: REFERENCE_RECIPE.gamma,
          batchSize: positiveInt('--batch', o.batch),
          seed: Number(o.seed),
          trainSubset: o.trainSubset ? positiveInt('--train-subset', o.trainSubset) : undefined,
          dropout: o.dropout === undefined ? undefined : probability('--dropout', o.dropout),
        },
        { outDir: out, resume: o.resume },
      );
      if (o.json) console.log(JSON.stringify(summary));
      else console.log(`${o.arch} on ${o.data}: test accuracy ${(summary.testAccuracy as number).toFixed(2)}% — weights and summary in ${out}`);
    });
}
