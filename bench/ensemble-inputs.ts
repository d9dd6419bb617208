// npm run exp:ensemble-inputs -- --run DIR [--seeds 0,1,2] [--epochs 500]
// Experiment: what the ZTW ensembles learn from. The reference trains them on
// the heads' outputs over one augmented pass of the training images, the
// images the heads were fit to, seen through crops and flips: a distribution
// the clean test images do not share. This trains the ensembles a second
// way, on every other validation image (held out from the heads), and prints
// paper-mode budget tables on the test split for SDN, ZTW as run, and ZTW
// with held-out ensembles, plus each head's confidence and accuracy on the
// training pass and on test.
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadExitLogProbs } from '../src/train/pipeline';
import { interleavedHalf, probsPerExit, type ExitLogProbs } from '../src/exits/collect';
import { applyEnsembles, trainEnsembles, REFERENCE_ENSEMBLE_RECIPE } from '../src/train/ensemble';
import { evaluateMethod } from '../src/eval/evaluate';
import { setNumThreads } from '../src/tensor';
import type { CostModel } from '../src/eval/types';
import { round } from './common';

const o = new Command()
  .requiredOption('--run <dir>', 'experiment directory of `ztw run` or `ztw demo` (seedN/ with cached outputs)')
  .option('--seeds <list>', 'seeds', '0')
  .option('--epochs <n>', 'ensemble epochs', String(REFERENCE_ENSEMBLE_RECIPE.epochs))
  .option('--threads <n>', 'threads', '1')
  .option('--json', 'print one JSON document')
  .parse()
  .opts();

/** Mean top probability and accuracy (%) of each exit. */
function perExit(e: ExitLogProbs): { confidence: number[]; accuracy: number[] } {
  const probs = probsPerExit(e);
  const K = e.numClasses;
  const confidence: number[] = [];
  const accuracy: number[] = [];
  for (const p of probs) {
    let conf = 0;
    let right = 0;
    for (let n = 0; n < e.numSamples; n++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (p[n * K + k] > p[n * K + best]) best = k;
      conf += p[n * K + best];
      if (best === e.labels[n]) right++;
    }
    confidence.push(round(conf / e.numSamples, 3));
    accuracy.push(round((100 * right) / e.numSamples, 1));
  }
  return { confidence, accuracy };
}

const table = (e: ExitLogProbs, costs: CostModel, rule: 'confidence' = 'confidence'): number[] => {
  const ev = evaluateMethod({ rule, test: { outputs: { numHeads: e.numExits, numSamples: e.numSamples, numClasses: e.numClasses, probs: probsPerExit(e) }, labels: e.labels }, costs });
  return [...ev.paper.entries.map((x) => round(x.accuracy ?? NaN, 2)), round(ev.paper.max.accuracy ?? NaN, 2)];
};

setNumThreads(Number(o.threads));
const report: Record<string, unknown>[] = [];
for (const seed of String(o.seeds).split(',').map(Number)) {
  const dir = path.join(o.run, `seed${seed}`);
  const file = (name: string): string => {
    const f = path.join(dir, name);
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run the pipeline (ztw run / ztw demo) into ${o.run} first`);
    return f;
  };
  const result = JSON.parse(fs.readFileSync(file('result.json'), 'utf8'));
  const trainAug = loadExitLogProbs(file('outputs-ztw-train-aug.safetensors'));
  const val = loadExitLogProbs(file('outputs-ztw-val.safetensors'));
  const test = loadExitLogProbs(file('outputs-ztw-test.safetensors'));
  const sdnTest = loadExitLogProbs(file('outputs-sdn-test.safetensors'));
  const recipe = { ...REFERENCE_ENSEMBLE_RECIPE, epochs: Number(o.epochs), kind: 'geometric' as const, seed };
  const asRun = trainEnsembles(trainAug, recipe, { silent: true }).ensembles;
  const heldOut = trainEnsembles(interleavedHalf(val, 0), recipe, { silent: true }).ensembles;
  const costs: CostModel = result.costs.ztw;
  const row = {
    seed,
    sdn: table(sdnTest, result.costs.sdn),
    ztw_train_ensembles: table(applyEnsembles(asRun, test), costs),
    ztw_heldout_ensembles: table(applyEnsembles(heldOut, test), costs),
    heads_on_train_pass: perExit(trainAug),
    heads_on_test: perExit(test),
  };
  asRun.dispose();
  heldOut.dispose();
  report.push(row);
  if (!o.json) {
    console.log(`seed ${seed} (paper mode on test: 25% 50% 75% 100% Max)`);
    console.log(`  SDN                          ${row.sdn.join('  ')}`);
    console.log(`  ZTW, ensembles on train pass ${row.ztw_train_ensembles.join('  ')}`);
    console.log(`  ZTW, ensembles on held-out   ${row.ztw_heldout_ensembles.join('  ')}`);
    console.log(`  head confidence train/test, first and last five: ${[0, 1, 2, 3, 4, -5, -4, -3, -2, -1].map((i) => `${row.heads_on_train_pass.confidence.at(i)}/${row.heads_on_test.confidence.at(i)}`).join(' ')}`);
    console.log(`  head accuracy   train/test, first and last five: ${[0, 1, 2, 3, 4, -5, -4, -3, -2, -1].map((i) => `${row.heads_on_train_pass.accuracy.at(i)}/${row.heads_on_test.accuracy.at(i)}`).join(' ')}`);
  }
}
if (o.json) console.log(JSON.stringify({ run: o.run, rows: report }));
