// ztw demo: the project's main job on the embedded default data. Starts from
// the ResNet-56 weights shipped in models/ (trained with `ztw train-backbone`,
// recipe in models/fashion-mnist-resnet56/summary.json) and trains only the
// heads and the ensembles, on a subset, so that it ends in a few minutes.
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_METHODS, VARIANTS } from '../exits/methods';
import { experimentOptions, parseMethods, runExperiment } from './experiment';
import { positiveInt } from './args';

export const SHIPPED_BACKBONE = path.join(__dirname, '..', '..', '..', 'models', 'fashion-mnist-resnet56', 'backbone.safetensors');

export function registerDemo(program: Command): void {
  experimentOptions(
    program
      .command('demo')
      .description('Zero Time Waste end to end on Fashion-MNIST in a few minutes (ResNet-56 backbone shipped with the project)')
      .option('--out <dir>', 'output directory', path.join('runs', 'demo'))
      .option('--ic-epochs <n>', 'IC epochs', '2')
      .option('--ensemble-epochs <n>', 'ensemble epochs (the reference: 500)', '500')
      .option('--seeds <n>', 'seeds', '1'),
  ).action(async (o) => {
    const backbone = o.backbone ?? SHIPPED_BACKBONE;
    if (!fs.existsSync(backbone)) throw new Error(`the demo backbone ${backbone} is missing; train one with \`ztw train-backbone --arch resnet56 --data fashion-mnist\` and pass --backbone`);
    await runExperiment({
      arch: 'resnet56', data: 'fashion-mnist', seeds: [...Array(positiveInt('--seeds', o.seeds)).keys()], out: o.out, backbone,
      backboneEpochs: 1, headEpochs: positiveInt('--ic-epochs', o.icEpochs), ensembleEpochs: positiveInt('--ensemble-epochs', o.ensembleEpochs),
      trainSubset: o.trainSubset ? positiveInt('--train-subset', o.trainSubset) : 8000, evalSubset: o.evalSubset ? positiveInt('--eval-subset', o.evalSubset) : undefined,
      methods: parseMethods(o.methods, [...DEFAULT_METHODS, ...VARIANTS]), json: o.json, resume: o.resume,
    });
  });
}
