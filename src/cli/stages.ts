// Stage commands for users with their own backbone weights:
//   ztw train-ics      --backbone W --heads sdn|ztw
//   ztw train-ensemble --backbone W --method ztw
//   ztw eval           --backbone W --methods sdn,pbee,ztw
// They share the run layout of `ztw run` (<out>/seed<k>/...), so stages can
// be mixed: train ICs here, evaluate there.
import type { Command } from 'commander';
import * as path from 'node:path';
import { loadDataset } from '../data/registry';
import { DEFAULT_METHODS, HEAD_CASCADE, methodSpec, type HeadKind } from '../exits/methods';
import { REFERENCE_HEAD_RECIPE } from '../train/heads';
import { REFERENCE_ENSEMBLE_RECIPE } from '../train/ensemble';
import { scaledMilestones } from '../train/backbone';
import { ensembleStage, headsStage, loadOrTrainBackbone, runSeed, type PipelineOptions } from '../train/pipeline';
import { budgetText, writeExperimentReport } from '../report/experiment';
import { positiveInt } from './args';
import { parseMethods } from './experiment';

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--backbone <file>', 'backbone weights (safetensors)')
    .option('--arch <name>', 'backbone architecture', 'resnet56')
    .option('--data <name>', 'data set', 'fashion-mnist')
    .option('--root <path>', 'data location')
    .option('--out <dir>', 'experiment directory (default runs/<data>/<arch>)')
    .option('--seed <n>', 'seed', '0')
    .option('--train-subset <n>', 'train on this many samples')
    .option('--eval-subset <n>', 'evaluate on this many test/validation samples')
    .option('--epochs <n>', 'epochs of this stage');
}

async function pipelineFor(o: Record<string, string | undefined>, methods: string[], epochs: { heads?: number; ensemble?: number }): Promise<PipelineOptions> {
  const data = await loadDataset(o.data as string, { root: o.root });
  const headEpochs = epochs.heads ?? REFERENCE_HEAD_RECIPE.epochs;
  return {
    arch: o.arch as string,
    data,
    seeds: [Number(o.seed)],
    outDir: o.out ?? path.join('runs', o.data as string, o.arch as string),
    backboneWeights: o.backbone,
    headRecipe: { epochs: headEpochs, lr: REFERENCE_HEAD_RECIPE.lr, milestones: scaledMilestones(headEpochs, REFERENCE_HEAD_RECIPE.milestones, REFERENCE_HEAD_RECIPE.epochs), gamma: 0.1, batchSize: REFERENCE_HEAD_RECIPE.batchSize, trainSubset: o.trainSubset ? positiveInt('--train-subset', o.trainSubset) : undefined },
    ensembleRecipe: { epochs: epochs.ensemble ?? REFERENCE_ENSEMBLE_RECIPE.epochs, lr: REFERENCE_ENSEMBLE_RECIPE.lr, batchSize: REFERENCE_ENSEMBLE_RECIPE.batchSize },
    methods,
    evalSubset: o.evalSubset ? positiveInt('--eval-subset', o.evalSubset) : undefined,
  };
}

export function registerStages(program: Command): void {
  common(program.command('train-ics').description('train the ICs of a frozen backbone (resumable)'))
    .option('--heads <kind>', 'sdn (independent) | ztw (cascade) | ztw-no-stop-grad', 'ztw')
    .action(async (o) => {
      if (!(o.heads in HEAD_CASCADE)) throw new Error(`--heads: expected ${Object.keys(HEAD_CASCADE).join(', ')}, got '${o.heads}'`);
      const p = await pipelineFor(o, [], { heads: o.epochs ? positiveInt('--epochs', o.epochs) : undefined });
      const backbone = await loadOrTrainBackbone(p);
      headsStage(backbone, p, Number(o.seed), o.heads as HeadKind);
      console.error(`ICs saved in ${path.join(p.outDir, `seed${o.seed}`)}`);
    });

  common(program.command('train-ensemble').description('train the per-exit ensembles of a method on the trained ICs'))
    .option('--method <name>', 'ztw | ztw-heldout | additive | ensemble-only | no-stop-grad', 'ztw')
    .action(async (o) => {
      const spec = methodSpec(o.method);
      if (!spec.ensemble) throw new Error(`--method ${o.method} has no ensemble`);
      const p = await pipelineFor(o, [o.method], { ensemble: o.epochs ? positiveInt('--epochs', o.epochs) : undefined });
      const backbone = await loadOrTrainBackbone(p);
      const net = headsStage(backbone, { ...p, trainMissing: false }, Number(o.seed), spec.heads);
      ensembleStage(net, p, Number(o.seed), o.method);
      console.error(`ensemble saved in ${path.join(p.outDir, `seed${o.seed}`)}`);
    });

  common(program.command('eval').description('evaluate trained ICs and ensembles: budget tables, HI, curves, report'))
    .option('--methods <list>', 'methods', DEFAULT_METHODS.join(','))
    .option('--json', 'print one JSON document')
    .action(async (o) => {
      const methods = parseMethods(o.methods, DEFAULT_METHODS);
      for (const m of methods) methodSpec(m);
      const p = await pipelineFor(o, methods, {});
      const backbone = await loadOrTrainBackbone(p);
      const result = await runSeed(backbone, { ...p, trainMissing: false }, Number(o.seed));
      const { summary } = writeExperimentReport(p.outDir, [result], methods, { arch: p.arch, data: o.data, classes: p.data.numClasses, seeds: String(o.seed), backbone: o.backbone });
      if (o.json) console.log(JSON.stringify(summary));
      else console.log(`${budgetText(summary, 'paper')}\n\n${budgetText(summary, 'heldout')}\n\nreport: ${path.join(p.outDir, 'report.html')}`);
    });
}
