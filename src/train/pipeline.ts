// The whole experiment of the paper for one backbone and data set: the
// backbone (shipped weights or trained), then per seed the SDN and ZTW heads,
// the cached exit outputs, the ensembles, and the offline evaluation of every
// method; finally the mean and std over seeds. Every stage writes its result
// atomically and is skipped when its result exists, so a killed run resumes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoadedDataset } from '../data/registry';
import { subset } from '../data/dataset';
import type { ImageDataset } from '../data/types';
import { createBackbone } from '../models/registry';
import { backboneCost, moduleCost } from '../models/cost';
import type { Backbone } from '../models/backbone';
import { EarlyExitNetwork } from '../exits/network';
import { ExitEnsembles, type EnsembleKind } from '../exits/ensemble';
import { HEAD_CASCADE, methodSpec, type HeadKind } from '../exits/methods';
import { collectExitLogProbs, collectSharedExitLogProbs, interleavedHalf, probsPerExit, type ExitLogProbs } from '../exits/collect';
import { evaluateMethod, type MethodEvaluation } from '../eval/evaluate';
import type { CostModel } from '../eval/types';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { manualSeed, tensor, zeros } from '../tensor/create';
import { dispose } from '../tensor/scope';
import { writeFileAtomic } from '../util/atomic';
import { trainBackbone, type BackboneRecipe } from './backbone';
import { trainSharedHeads, type HeadRecipe } from './heads';
import { applyEnsembles, trainEnsembles, type EnsembleRecipe } from './ensemble';
import { checkpointExists } from './checkpoint';

export interface PipelineOptions {
  arch: string;
  data: LoadedDataset;
  seeds: number[];
  outDir: string;
  /** Backbone weights (safetensors); without them the backbone is trained with backboneRecipe. */
  backboneWeights?: string;
  backboneRecipe?: BackboneRecipe;
  headRecipe: Omit<HeadRecipe, 'seed' | 'weightDecay'> & { weightDecay?: number };
  ensembleRecipe: Omit<EnsembleRecipe, 'seed' | 'kind'>;
  methods: string[];
  /** Evaluate on this many test/val samples only (quick runs). */
  evalSubset?: number;
  resume?: boolean;
  /** false: stages whose results are missing fail instead of training (ztw eval). */
  trainMissing?: boolean;
  silent?: boolean;
  log?: (s: string) => void;
}

export interface SeedResult {
  seed: number;
  baseAccuracy: number;
  methods: Record<string, MethodEvaluation>;
  costs: Record<string, CostModel>;
}

const ensembleKindOf = (m: string): EnsembleKind | null => methodSpec(m).ensemble;

export async function loadOrTrainBackbone(o: PipelineOptions): Promise<Backbone> {
  const [c, h] = o.data.inputShape;
  if (o.backboneWeights) {
    const { tensors, metadata } = loadSafetensors(o.backboneWeights);
    if (metadata.arch && metadata.arch !== o.arch) throw new Error(`${o.backboneWeights} holds a ${metadata.arch}, not a ${o.arch}`);
    if (metadata.dataset && metadata.dataset !== o.data.name) throw new Error(`${o.backboneWeights} was trained on ${metadata.dataset}, not ${o.data.name}`);
    const model = createBackbone(o.arch, { numClasses: o.data.numClasses, inChannels: c, inputSize: h });
    model.loadStateDict(tensors);
    dispose([...tensors.values()]);
    return model.toMemoryFormat('channels_last');
  }
  if (!o.backboneRecipe) throw new Error('no backbone weights given and no recipe to train one');
  const dir = path.join(o.outDir, 'backbone');
  const done = path.join(dir, 'backbone.safetensors');
  if (fs.existsSync(done) && fs.existsSync(path.join(dir, 'summary.json'))) return loadOrTrainBackbone({ ...o, backboneWeights: done });
  return (await trainBackbone(o.data, o.backboneRecipe, { outDir: dir, resume: o.resume ?? true, silent: o.silent, log: o.log })).model;
}

function saveExitLogProbs(file: string, e: ExitLogProbs): void {
  saveSafetensors(file, new Map([['logProbs', tensor(e.logProbs, [e.numSamples, e.numExits, e.numClasses])], ['labels', tensor(e.labels, [e.numSamples], 'int32')]]));
}
/** Exit outputs cached by a run (outputs-*.safetensors). */
export function loadExitLogProbs(file: string): ExitLogProbs {
  const { tensors } = loadSafetensors(file);
  const lp = tensors.get('logProbs');
  const lb = tensors.get('labels');
  if (!lp || !lb) throw new Error(`${file}: not an exit-output cache`);
  const [N, M, K] = lp.shape;
  const out = { numSamples: N, numExits: M, numClasses: K, logProbs: lp.data() as Float32Array, labels: lb.data() as Int32Array };
  dispose([lp, lb]);
  return out;
}
function cached(file: string, make: () => ExitLogProbs): ExitLogProbs {
  return cachedShared([file], () => [make()])[0];
}

/** Outputs cached per file; the missing ones are made together (one backbone pass). */
function cachedShared(files: string[], make: (missing: number[]) => ExitLogProbs[]): ExitLogProbs[] {
  const missing = files.flatMap((f, i) => (fs.existsSync(f) ? [] : [i]));
  const made = missing.length ? make(missing) : [];
  return files.map((f, i) => {
    const j = missing.indexOf(i);
    if (j < 0) return loadExitLogProbs(f);
    saveExitLogProbs(f, made[j]);
    return made[j];
  });
}

/** FLOPs of a sample leaving at each exit: backbone to the tap + heads so far (+ ensemble). */
export function exitCostModel(net: EarlyExitNetwork, ensembles: ExitEnsembles | null): CostModel {
  const bb = backboneCost(net.backbone);
  const K = net.backbone.numClasses;
  let headsSoFar = 0;
  const exitCosts = net.heads.map((h, i) => {
    const tap = net.backbone.taps[net.tapIndices[i]].shape;
    headsSoFar += moduleCost(h, () => [zeros([1, ...tap]), zeros([1, K])]).flops;
    return bb.taps[net.tapIndices[i]].flops + headsSoFar + (ensembles ? ensembles.exitFlops(i) : 0);
  });
  exitCosts.push(bb.flops + headsSoFar + (ensembles ? ensembles.exitFlops(net.heads.length) : 0));
  return { exitCosts, baseCost: bb.flops };
}

const asOutputs = (e: ExitLogProbs) => ({ outputs: { numHeads: e.numExits, numSamples: e.numSamples, numClasses: e.numClasses, probs: probsPerExit(e) }, labels: e.labels });

const seedDir = (o: PipelineOptions, seed: number): string => path.join(o.outDir, `seed${seed}`);

/** The validation images a run evaluates on (a fixed subset with --eval-subset). */
const validationSplit = (o: PipelineOptions): ImageDataset | undefined => o.data.val && (o.evalSubset ? subset(o.data.val, o.evalSubset, 2) : o.data.val);

/**
 * Stages are reused only under the recipe that made them: a rerun into the
 * same directory with other epochs or subsets would otherwise silently
 * return the old numbers.
 */
function checkRecipe(dir: string, o: PipelineOptions): void {
  const recipe = JSON.stringify({ arch: o.arch, data: o.data.name, backbone: o.backboneWeights ?? 'trained', heads: o.headRecipe, ensemble: o.ensembleRecipe, evalSubset: o.evalSubset ?? null });
  const file = path.join(dir, 'recipe.json');
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') !== recipe)
    throw new Error(`${dir} holds stages made with another recipe (${fs.readFileSync(file, 'utf8')}); use another --out, or --no-resume to start afresh`);
  writeFileAtomic(file, recipe);
}

/** The heads of one kind for a seed: trained (or resumed) unless o.trainMissing is false. */
export function headsStage(backbone: Backbone, o: PipelineOptions, seed: number, kind: HeadKind): EarlyExitNetwork {
  return headsStages(backbone, o, seed, [kind])[0];
}

/** The heads of several kinds for a seed, trained together in one pass over the backbone. */
export function headsStages(backbone: Backbone, o: PipelineOptions, seed: number, kinds: HeadKind[]): EarlyExitNetwork[] {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const dir = seedDir(o, seed);
  fs.mkdirSync(dir, { recursive: true });
  const recipe: HeadRecipe = { ...o.headRecipe, weightDecay: o.headRecipe.weightDecay ?? backbone.weightDecay, seed };
  const sets = kinds.map((kind) => {
    manualSeed(seed * 7919 + (kind === 'sdn' ? 0 : 1));
    const net = new EarlyExitNetwork(backbone, { cascade: HEAD_CASCADE[kind] });
    net.heads.forEach((h) => h.toMemoryFormat('channels_last'));
    const checkpoint = path.join(dir, `heads-${kind}.ckpt.safetensors`);
    if (o.trainMissing === false && !fs.existsSync(checkpoint)) throw new Error(`no trained ${kind} heads in ${dir}; run \`ztw train-ics --heads ${kind}\` first`);
    return { net, checkpoint, kind };
  });
  if (o.trainMissing !== false) log(`seed ${seed}: ${kinds.map((k) => k.toUpperCase()).join(' and ')} heads (${sets[0].net.heads.length} ICs each, ${recipe.epochs} epochs${kinds.length > 1 ? ', one backbone pass for both' : ''})`);
  const progress = trainSharedHeads(sets, o.data, o.trainMissing === false ? { ...recipe, epochs: 0 } : recipe, { resume: true, silent: o.silent, log });
  progress.forEach((p, i) => {
    if (o.trainMissing === false && p.epoch === 0) throw new Error(`${sets[i].checkpoint} holds no trained epoch`);
  });
  return sets.map((s) => s.net);
}

/** The ensemble of a method (null for methods without one), trained on cached augmented train outputs. */
export function ensembleStage(net: EarlyExitNetwork, o: PipelineOptions, seed: number, method: string): ExitEnsembles | null {
  const ek = ensembleKindOf(method);
  if (!ek) return null;
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const dir = seedDir(o, seed);
  const kind = methodSpec(method).heads;
  const ensFile = path.join(dir, `ensemble-${method}.safetensors`);
  const ens = new ExitEnsembles({ numExits: net.numExits, numClasses: net.backbone.numClasses, kind: ek });
  if (fs.existsSync(ensFile)) {
    const { tensors } = loadSafetensors(ensFile);
    ens.loadStateDict(tensors);
    dispose([...tensors.values()]);
    return ens;
  }
  if (ek === 'mean') return ens;
  if (o.trainMissing === false) throw new Error(`no trained ensemble for ${method} in ${dir}; run \`ztw train-ensemble --method ${method}\` first`);
  let inputs: ExitLogProbs;
  let epochs = o.ensembleRecipe.epochs;
  const train = o.headRecipe.trainSubset ? subset(o.data.train, o.headRecipe.trainSubset, seed) : o.data.train;
  if (methodSpec(method).ensembleData === 'heldout') {
    const val = validationSplit(o);
    if (!val) throw new Error(`${method} fits its ensembles on validation images; ${o.data.name} has no validation split`);
    inputs = interleavedHalf(cached(path.join(dir, `outputs-${kind}-val.safetensors`), () => collectExitLogProbs(net, val, o.data.norm, { silent: o.silent, label: `${kind} exits on val` })), 0);
    // As many optimiser steps as the same epochs over the training subset (the reference's input).
    const B = o.ensembleRecipe.batchSize;
    epochs = Math.max(1, Math.round((epochs * Math.ceil(train.n / B)) / Math.ceil(inputs.numSamples / B)));
  } else {
    // Ensemble inputs: one fixed augmented pass over the training set, as the reference.
    inputs = cached(path.join(dir, `outputs-${kind}-train-aug.safetensors`), () => collectExitLogProbs(net, train, o.data.norm, { augment: o.data.augment, seed, silent: o.silent, label: `${kind} exits on train (augmented)` }));
  }
  log(`seed ${seed}: training ${ek} ensembles for ${method} (${epochs} epochs on ${inputs.numSamples} ${methodSpec(method).ensembleData === 'heldout' ? 'held-out validation' : 'augmented training'} images)`);
  ens.dispose();
  const trained = trainEnsembles(inputs, { ...o.ensembleRecipe, epochs, kind: ek, seed }, { silent: o.silent }).ensembles;
  saveSafetensors(ensFile, trained.stateDict());
  return trained;
}

export async function runSeed(backbone: Backbone, o: PipelineOptions, seed: number): Promise<SeedResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const dir = seedDir(o, seed);
  if (o.resume === false) fs.rmSync(dir, { recursive: true, force: true }); // afresh: no stage is reused
  fs.mkdirSync(dir, { recursive: true });
  checkRecipe(dir, o);
  const resultFile = path.join(dir, 'result.json');
  if (o.resume !== false && fs.existsSync(resultFile)) {
    const previous = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as SeedResult;
    if (o.methods.every((m) => previous.methods[m])) {
      log(`seed ${seed}: results exist (${resultFile}), reusing them`);
      return previous;
    }
  }
  const test = o.evalSubset ? subset(o.data.test, o.evalSubset, 1) : o.data.test;
  const val = validationSplit(o);
  const headKinds = [...new Set(o.methods.map((m) => methodSpec(m).heads))] as HeadKind[];
  const result: SeedResult = { seed, baseAccuracy: NaN, methods: {}, costs: {} };

  const nets = headsStages(backbone, o, seed, headKinds);
  const outputs = (ds: ImageDataset, split: string): ExitLogProbs[] =>
    cachedShared(
      headKinds.map((k) => path.join(dir, `outputs-${k}-${split}.safetensors`)),
      (missing) => collectSharedExitLogProbs(missing.map((i) => nets[i]), ds, o.data.norm, { silent: o.silent, label: `${missing.map((i) => headKinds[i]).join('+')} exits on ${split}` }),
    );
  const valOuts = val ? outputs(val, 'val') : undefined;
  const testOuts = outputs(test, 'test');
  for (const [i, kind] of headKinds.entries()) {
    const net = nets[i];
    const valOut = valOuts?.[i];
    const testOut = testOuts[i];
    result.baseAccuracy = accuracyOfExit(testOut, testOut.numExits - 1);

    for (const m of o.methods.filter((m) => methodSpec(m).heads === kind)) {
      const ens = ensembleStage(net, o, seed, m);
      const tOut = ens ? applyEnsembles(ens, testOut) : testOut;
      // Ensembles fit on half of the validation split choose thresholds on the other half.
      const vOut = ens ? valOut && applyEnsembles(ens, methodSpec(m).ensembleData === 'heldout' ? interleavedHalf(valOut, 1) : valOut) : valOut;
      const costs = exitCostModel(net, ens);
      result.costs[m] = costs;
      result.methods[m] = evaluateMethod({ rule: methodSpec(m).rule, test: asOutputs(tOut), val: vOut && asOutputs(vOut), costs });
      ens?.dispose();
    }
    net.heads.forEach((h) => h.dispose());
  }
  writeFileAtomic(resultFile, JSON.stringify(result));
  return result;
}

function accuracyOfExit(e: ExitLogProbs, m: number): number {
  const { numSamples: N, numExits: M, numClasses: K, logProbs, labels } = e;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    let best = 0;
    const base = (n * M + m) * K;
    for (let k = 1; k < K; k++) if (logProbs[base + k] > logProbs[base + best]) best = k;
    if (best === labels[n]) correct++;
  }
  return (100 * correct) / N;
}

export { checkpointExists };
