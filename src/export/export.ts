// Exports a trained early-exit network as ONNX graphs, one per exit, and a
// manifest: graph m takes the image (m = 0) or the features at the previous
// exit's tap (x) [and the previous head's logits, prev_logits], runs the
// backbone segment to exit m's tap and head m on it, and gives the features
// (for the next exit), the logits and the log-probabilities; the last graph
// ends in the backbone's logits. The ensembles' weights are numbers in the
// manifest. Beside them, one graph of the whole model with the ensembles
// and the exit rule inside (fused.ts), which onnxruntime runs in one call.
// Each graph is traced from one real run of the module
// (tracer.ts), in eval mode, so batch norm arrives folded into the
// convolutions exactly where the libtorch runtime folds it (nn/fused.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EarlyExitNetwork } from '../exits/network';
import type { ExitEnsembles } from '../exits/ensemble';
import type { CostModel } from '../eval/types';
import * as F from '../nn/functional';
import { randn } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import type { NativeHandle } from '../tensor/native';
import { writeFileAtomic } from '../util/atomic';
import { exitCostModel } from '../train/pipeline';
import { encodeModel, type OnnxGraph } from './onnx-proto';
import { fuseExitGraphs } from './fused';
import { withTracer, type Tracer } from './tracer';
import { MANIFEST_FORMAT, MANIFEST_VERSION, checkPolicy, validateManifest, type EarlyExitManifest, type ExitPolicy, type ManifestExit, type ManifestStage, type Preprocess } from '../runtime/onnx-core';

export const DEFAULT_OPSET = 17;
export const MANIFEST_FILE = 'manifest.json';
/** The one-graph models: any batch, and one sample at a time. */
export const FUSED_FILES = { batch: 'early-exit.onnx', single: 'early-exit-1.onnx' } as const;

export interface ExportOptions {
  net: EarlyExitNetwork;
  ensembles?: ExitEnsembles | null;
  outDir: string;
  /** Exit costs (default: the pipeline's cost model of this network and ensemble). */
  costs?: CostModel;
  /** The exit rule recorded in the manifest (default: confidence, tau 0.9). */
  policy?: ExitPolicy;
  classNames?: string[];
  /** Input normalisation (default: pixels / 255, mean 0, std 1, no padding). */
  preprocess?: Partial<Preprocess>;
  method?: string | null;
  opset?: number;
  /** Extra facts for the manifest (data set, seed, source files). */
  info?: Record<string, unknown>;
  /** Batch of the tracing run (any size > 1; the graphs take any batch). */
  traceBatch?: number;
  /** Also write the one-graph models for the policy's rule (early-exit.onnx and early-exit-1.onnx; default true). */
  fused?: boolean;
}

export interface ExportResult {
  dir: string;
  manifest: EarlyExitManifest;
  /** Files written, manifest last. */
  files: string[];
}

function constantNames(net: EarlyExitNetwork, ens: ExitEnsembles | null): Map<NativeHandle, string> {
  const names = new Map<NativeHandle, string>();
  for (const [k, t] of net.stateDict()) names.set(t.handle, k);
  if (ens) for (const [k, t] of ens.stateDict()) names.set(t.handle, `ensemble.${k}`);
  return names;
}

/** Exports net (and its ensembles) to outDir; returns the manifest written there. */
export function exportEarlyExit(o: ExportOptions): ExportResult {
  const { net } = o;
  const ens = o.ensembles ?? null;
  const backbone = net.backbone;
  const M = net.numExits;
  const K = backbone.numClasses;
  if (ens && (ens.options.numExits !== M || ens.options.numClasses !== K)) throw new Error(`export: the ensembles cover ${ens.options.numExits} exits x ${ens.options.numClasses} classes, the network has ${M} x ${K}`);
  const policy = o.policy ?? { kind: 'confidence', tau: 0.9 };
  checkPolicy(policy, M);
  const classNames = o.classNames ?? Array.from({ length: K }, (_, k) => String(k));
  if (classNames.length !== K) throw new Error(`export: ${classNames.length} class names for ${K} classes`);
  const opset = o.opset ?? DEFAULT_OPSET;
  const B = o.traceBatch ?? 2;
  if (!Number.isInteger(B) || B < 2) throw new RangeError('export: traceBatch must be an integer >= 2 (a batch of 1 hides batch-dependent reshapes)');

  const wasTraining = net.training;
  const ensWasTraining = ens?.training ?? false;
  const costs = o.costs ?? exitCostModel(net, ens);
  if (costs.exitCosts.length !== M) throw new Error(`export: ${costs.exitCosts.length} exit costs for ${M} exits`);

  const graphs: { file: string; graph: OnnxGraph; stage: ManifestStage }[] = [];
  net.eval();
  ens?.eval();
  try {
    noGrad(() =>
      tidy(() =>
        withTracer(constantNames(net, ens), (tr) => {
          const add = (file: string, exit: number, doc: string): void => {
            const graph = tr.endGraph(doc);
            graphs.push({ file, graph, stage: { file, kind: 'exit', exit, inputs: graph.inputs.map((v) => v.name), outputs: graph.outputs.map((v) => v.name) } });
          };
          const x = randn([B, ...backbone.inputShape]);
          // One graph per exit: the backbone from the previous exit's tap
          // (or the image) to this exit's tap, and the head on it. Every
          // session run costs ~0.1-0.2 ms in onnxruntime-node whatever its
          // size, so a segment and its head run as one graph.
          let exit = 0;
          let prevLogits: Tensor | undefined;
          const begin = (input: Tensor): void => {
            tr.beginGraph(`exit_${exit}`);
            tr.input('x', input);
            if (exit < M - 1 && net.heads[exit].usesPrevious) tr.input('prev_logits', prevLogits as Tensor);
          };
          const finish = (logits: Tensor, doc: string): void => {
            tr.output('logits', logits);
            tr.output('log_probs', F.logSoftmax(logits, 1));
            add(`exit_${exit}.onnx`, exit, doc);
          };
          const from = (): string => (exit ? `tap ${net.tapIndices[exit - 1]}` : 'the input');
          begin(x);
          const gen = backbone.staged(x);
          let tap = 0;
          for (let r = gen.next(); ; r = gen.next()) {
            if (r.done) {
              finish(r.value, `backbone from ${from()} to the logits`);
              break;
            }
            if (!net.tapIndices.includes(tap++)) continue;
            const features = r.value;
            tr.output('features', features);
            const logits = net.heads[exit].forward(features, exit > 0 ? prevLogits : undefined);
            finish(logits, `backbone from ${from()} to tap ${tap - 1} (${backbone.taps[tap - 1].name}), and internal classifier ${exit} on it`);
            prevLogits = logits;
            exit++;
            begin(features);
          }
        }),
      ),
    );
  } finally {
    net.train(wasTraining);
    ens?.train(ensWasTraining);
  }

  const exits: ManifestExit[] = Array.from({ length: M }, (_, m) => {
    const final = m === M - 1;
    const t = final ? null : net.tapIndices[m];
    return {
      index: m,
      kind: final ? 'final' : 'ic',
      tap: t,
      tapName: t === null ? null : backbone.taps[t].name,
      cost: costs.exitCosts[m],
      graph: graphs[m].file,
      usesPreviousLogits: final ? false : net.heads[m].usesPrevious,
    };
  });
  // The ensembles travel as numbers: the runtimes combine exits in JS (exits/combine.ts).
  const combiner = ens?.combiner();
  const ensembleParams = combiner ? { weights: combiner.spec.weights.map((w) => Array.from(w)), bias: combiner.spec.bias.map((b) => (b ? Array.from(b) : null)) } : null;
  const [C, H, W] = backbone.inputShape;
  const pre: Preprocess = { scale: 1 / 255, mean: new Array(C).fill(0), std: new Array(C).fill(1), sourceShape: [C, H, W], pad: 0, ...o.preprocess };
  const manifest: EarlyExitManifest = validateManifest({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    opset,
    arch: backbone.arch,
    method: o.method ?? null,
    ensemble: ens ? ens.kind : null,
    ensembleParams,
    numClasses: K,
    classNames,
    inputShape: backbone.inputShape,
    preprocess: pre,
    policy,
    costs: { unit: 'flops', exitCosts: [...costs.exitCosts], baseCost: costs.baseCost },
    exits,
    stages: graphs.map((g) => g.stage),
    fused: o.fused === false ? null : { rule: policy.kind, ...FUSED_FILES },
    info: o.info,
  });

  fs.mkdirSync(o.outDir, { recursive: true });
  const files: string[] = [];
  for (const g of graphs) {
    const file = path.join(o.outDir, g.file);
    writeFileAtomic(file, encodeModel(g.graph, { opset, metadata: { 'ztw.stage': g.stage.kind, 'ztw.exit': String(g.stage.exit) } }));
    files.push(file);
  }
  if (manifest.fused) {
    const { rule } = manifest.fused;
    for (const single of [false, true]) {
      const graph = fuseExitGraphs({
        exits: graphs.map((g) => g.graph),
        usesPreviousLogits: exits.map((e) => e.usesPreviousLogits),
        numClasses: K,
        ensemble: ens && combiner ? { kind: ens.kind, weights: combiner.spec.weights, bias: combiner.spec.bias } : null,
        input: graphs[0].graph.inputs[0],
        rule,
        single,
      });
      const file = path.join(o.outDir, single ? manifest.fused.single : manifest.fused.batch);
      writeFileAtomic(file, encodeModel(graph, { opset, metadata: { 'ztw.stage': 'fused', 'ztw.rule': rule, 'ztw.batch': single ? '1' : 'N' } }));
      files.push(file);
    }
  }
  const mf = path.join(o.outDir, MANIFEST_FILE);
  writeFileAtomic(mf, JSON.stringify(manifest, null, 1) + '\n');
  files.push(mf);
  return { dir: o.outDir, manifest, files };
}

export type { Tracer };
