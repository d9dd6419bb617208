// Runs every exit once over a dataset and keeps its log-probabilities, so
// that thresholds, patience and ensembles can all be evaluated offline.
import { BatchLoader } from '../data/batchLoader';
import type { ImageDataset, NormStats, AugmentSpec } from '../data/types';
import * as F from '../nn/functional';
import { stack, tensor } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { augmentedBatchTensors, plainBatchTensors } from '../train/batches';
import { createProgress } from '../util/progress';
import { sharedExitLogits, type EarlyExitNetwork } from './network';

/** Exit log-probabilities [N, M, K] as one Float32Array, with labels. */
export interface ExitLogProbs {
  numSamples: number;
  numExits: number;
  numClasses: number;
  logProbs: Float32Array;
  labels: Int32Array;
}

export interface CollectOptions {
  batchSize?: number;
  augment?: AugmentSpec | false;
  seed?: number;
  silent?: boolean;
  label?: string;
}

export function collectExitLogProbs(net: EarlyExitNetwork, ds: ImageDataset, norm: NormStats, o: CollectOptions = {}): ExitLogProbs {
  return collectSharedExitLogProbs([net], ds, norm, o)[0];
}

/**
 * The same for several networks over one backbone (SDN and ZTW heads): the
 * backbone runs once per batch for all of them.
 */
export function collectSharedExitLogProbs(nets: EarlyExitNetwork[], ds: ImageDataset, norm: NormStats, o: CollectOptions = {}): ExitLogProbs[] {
  if (nets.length === 0) return [];
  nets.forEach((n) => n.eval());
  const K = nets[0].backbone.numClasses;
  const outs = nets.map((n) => new Float32Array(ds.n * n.numExits * K));
  const labels = new Int32Array(ds.n);
  const loader = new BatchLoader(ds, { batchSize: o.batchSize ?? 256, shuffle: false, augment: o.augment ?? false, seed: o.seed ?? 0, norm });
  const bar = createProgress({ total: ds.n, label: o.label ?? `exits on ${ds.name}`, unit: 'img', silent: o.silent });
  let offset = 0;
  noGrad(() => {
    for (let batch = 0; batch < loader.numBatches; batch++)
      tidy(() => {
        // Augmented passes (the ensembles' training inputs) augment on tensors, as training does.
        const { x, labels: y } = loader.augment ? augmentedBatchTensors(loader, 0, batch, 'channels_last') : plainBatchTensors(loader, batch);
        sharedExitLogits(nets, x).forEach((logits, i) => {
          const lp = stack(logits.map((l) => F.logSoftmax(l, 1)), 1); // [n, M, K]
          outs[i].set(lp.data() as Float32Array, offset * nets[i].numExits * K);
        });
        labels.set(y, offset);
        offset += y.length;
        bar.increment(y.length);
      });
  });
  bar.stop();
  return nets.map((n, i) => ({ numSamples: ds.n, numExits: n.numExits, numClasses: K, logProbs: outs[i], labels: i === 0 ? labels : labels.slice() }));
}

/**
 * Every other sample from `first` (0 or 1): two disjoint halves that both
 * cover every class (the splits are stored class by class, so halves by
 * position would not).
 */
export function interleavedHalf(e: ExitLogProbs, first: 0 | 1): ExitLogProbs {
  const per = e.numExits * e.numClasses;
  const idx = Array.from({ length: Math.floor((e.numSamples - first + 1) / 2) }, (_, i) => first + 2 * i);
  const logProbs = new Float32Array(idx.length * per);
  idx.forEach((n, i) => logProbs.set(e.logProbs.subarray(n * per, (n + 1) * per), i * per));
  return { ...e, numSamples: idx.length, logProbs, labels: Int32Array.from(idx, (n) => e.labels[n]) };
}

export function logProbsTensor(e: ExitLogProbs): Tensor {
  return tensor(e.logProbs, [e.numSamples, e.numExits, e.numClasses], 'float32');
}

/** Per-exit probability rows for the offline evaluator: probs[m] is [N*K]. */
export function probsPerExit(e: ExitLogProbs): Float32Array[] {
  const { numSamples: N, numExits: M, numClasses: K, logProbs } = e;
  const probs = Array.from({ length: M }, () => new Float32Array(N * K));
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++) {
      const src = (n * M + m) * K;
      const dst = probs[m];
      for (let k = 0; k < K; k++) dst[n * K + k] = Math.exp(logProbs[src + k]);
    }
  return probs;
}
