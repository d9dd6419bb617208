// ztw run / ztw demo: the whole experiment, resumable stage by stage.
import type { Command } from 'commander';
import * as path from 'node:path';
import { loadDataset } from '../data/registry';
import { DEFAULT_METHODS, ABLATIONS, VARIANTS, methodSpec } from '../exits/methods';
import { REFERENCE_RECIPE, scaledMilestones } from '../train/backbone';
import { REFERENCE_HEAD_RECIPE } from '../train/heads';
import { REFERENCE_ENSEMBLE_RECIPE } from '../train/ensemble';
import { loadOrTrainBackbone, runSeed, type PipelineOptions, type SeedResult } from '../train/pipeline';
import { budgetText, writeExperimentReport } from '../report/experiment';
import { intList, positiveInt } from './args';

export interface ExperimentFlags {
  arch: string;
  data: string;
  root?: string;
  download?: boolean;
  seeds: number[];
  out: string;
  backbone?: string;
  backboneEpochs: number;
  headEpochs: number;
  headMilestones?: number[];
  ensembleEpochs: number;
  trainSubset?: number;
  evalSubset?: number;
  methods: string[];
  json?: boolean;
  resume: boolean;
}

export async function runExperiment(f: ExperimentFlags): Promise<void> {
  for (const m of f.methods) methodSpec(m); // fail early on a bad name
  const t0 = Date.now();
  const data = await loadDataset(f.data, { root: f.root, download: f.download });
  const headMilestones = f.headMilestones ?? scaledMilestones(f.headEpochs, REFERENCE_HEAD_RECIPE.milestones, REFERENCE_HEAD_RECIPE.epochs);
  const o: PipelineOptions = {
    arch: f.arch,
    data,
    seeds: f.seeds,
    outDir: f.out,
    backboneWeights: f.backbone,
    backboneRecipe: { ...REFERENCE_RECIPE, arch: f.arch, epochs: f.backboneEpochs, milestones: scaledMilestones(f.backboneEpochs), seed: 0 },
    headRecipe: { epochs: f.headEpochs, lr: REFERENCE_HEAD_RECIPE.lr, milestones: headMilestones, gamma: 0.1, batchSize: REFERENCE_HEAD_RECIPE.batchSize, trainSubset: f.trainSubset },
    ensembleRecipe: { epochs: f.ensembleEpochs, lr: REFERENCE_ENSEMBLE_RECIPE.lr, batchSize: REFERENCE_ENSEMBLE_RECIPE.batchSize },
    methods: f.methods,
    evalSubset: f.evalSubset,
    resume: f.resume,
  };
  const backbone = await loadOrTrainBackbone(o);
  const results: SeedResult[] = [];
  for (const s of f.seeds) results.push(await runSeed(backbone, o, s));
  const meta = { arch: f.arch, data: f.data, classes: data.numClasses, seeds: f.seeds.join(','), 'IC epochs': f.headEpochs, 'ensemble epochs': f.ensembleEpochs, 'train samples': f.trainSubset ?? data.train.n, 'test samples': f.evalSubset ?? data.test.n, backbone: f.backbone ?? 'trained here', minutes: Math.round((Date.now() - t0) / 600) / 100 };
  const { summary } = writeExperimentReport(f.out, results, f.methods, meta);
  if (f.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  console.log(budgetText(summary, 'paper'));
  console.log();
  console.log(budgetText(summary, 'heldout'));
  console.log();
  console.log(`Hindsight Improvability (last ${Math.min(5, summary.hiChance.length)} heads, %):`);
  for (const [m, hi] of Object.entries(summary.hi)) console.log(`  ${m.padEnd(12)} ${hi.slice(-5).map((h) => h.toFixed(1)).join('  ')}`);
  console.log(`\nreport: ${path.join(f.out, 'report.html')} (curves.svg/png, hindsight.svg/png, report.md, results.json)`);
}

/** Options shared by run and demo. */
export function experimentOptions(cmd: Command): Command {
  return cmd
    .option('--root <path>', 'data location (CIFAR archive or folder, Tiny ImageNet, ImageFolder)')
    .option('--download', 'download CIFAR if missing')
    .option('--backbone <file>', 'pre-trained backbone weights (safetensors); otherwise trained here')
    .option('--methods <list>', `methods: ${[...DEFAULT_METHODS, ...ABLATIONS, ...VARIANTS].join(', ')}, or "all"`)
    .option('--train-subset <n>', 'train heads and ensembles on this many samples')
    .option('--eval-subset <n>', 'evaluate on this many test and validation samples')
    .option('--no-resume', 'start every stage afresh instead of reusing finished ones')
    .option('--json', 'print one JSON document on stdout');
}

export function parseMethods(v: string | undefined, dflt: string[]): string[] {
  if (!v) return dflt;
  if (v === 'all') return [...DEFAULT_METHODS, ...ABLATIONS, ...VARIANTS];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function registerRun(program: Command): void {
  experimentOptions(
    program
      .command('run')
      .description('train (or reuse) the backbone, SDN and ZTW heads and ensembles; evaluate SDN, PBEE and ZTW; write the report')
      .option('--arch <name>', 'backbone', 'resnet56')
      .option('--data <name>', 'data set', 'fashion-mnist')
      .option('--seeds <n>', 'number of seeds (0..n-1) or a list like 0,1,2', '3')
      .option('--out <dir>', 'output directory (default runs/<data>/<arch>)')
      .option('--backbone-epochs <n>', 'backbone epochs when training it', '100')
      .option('--ic-epochs <n>', 'IC epochs (x0.1 at 30%)', String(REFERENCE_HEAD_RECIPE.epochs))
      .option('--ensemble-epochs <n>', 'ensemble epochs', String(REFERENCE_ENSEMBLE_RECIPE.epochs)),
  ).action(async (o) => {
    const seeds = o.seeds.includes(',') ? intList('--seeds', o.seeds) : [...Array(positiveInt('--seeds', o.seeds)).keys()];
    await runExperiment({
      arch: o.arch, data: o.data, root: o.root, download: o.download, seeds, out: o.out ?? path.join('runs', o.data, o.arch), backbone: o.backbone,
      backboneEpochs: positiveInt('--backbone-epochs', o.backboneEpochs), headEpochs: positiveInt('--ic-epochs', o.icEpochs), ensembleEpochs: positiveInt('--ensemble-epochs', o.ensembleEpochs),
      trainSubset: o.trainSubset ? positiveInt('--train-subset', o.trainSubset) : undefined, evalSubset: o.evalSubset ? positiveInt('--eval-subset', o.evalSubset) : undefined,
      methods: parseMethods(o.methods, DEFAULT_METHODS), json: o.json, resume: o.resume,
    });
  });
}
