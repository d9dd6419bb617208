/**
 * Mini-batches as plain typed arrays: x Float32Array NCHW (normalised, optionally augmented),
 * y Int32Array labels. Everything random is a pure function of (seed, epoch, batch index):
 * the sample order of epoch e comes from deriveSeed(seed, ORDER, e), the augmentation of batch b
 * from deriveSeed(seed, AUGMENT, e, b). So a run resumed at (epoch e, batch b) sees exactly the
 * batches an uninterrupted run would have seen.
 */
import { Normalizer, augmentInto, sampleAugment, IDENTITY_PARAMS, type AugmentParams } from './augment';
import { Rng, deriveSeed } from './rng';
import type { AugmentSpec, ImageDataset, NormStats } from './types';

export interface BatchLoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  /** Augmentation recipe, or false/undefined for none (evaluation). */
  augment?: AugmentSpec | false;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Normalisation; default mean 0, std 1 (pixels scaled to [0,1]). */
  norm?: NormStats;
  /** Reuse one x/y buffer pair for all batches (the previous batch is overwritten); default false. */
  reuseBuffers?: boolean;
}

export interface Batch {
  x: Float32Array;
  y: Int32Array;
  n: number;
  shape: [number, number, number, number];
  /** Dataset indices of the samples, in batch order. */
  indices: Uint32Array;
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
}

export interface RawBatch {
  /** uint8 images [n, C, H, W], row-major. */
  images: Uint8Array;
  labels: Int32Array;
  /** Each image's augmentation draws. */
  params: AugmentParams[];
  n: number;
  shape: [number, number, number, number];
  indices: Uint32Array;
  epoch: number;
  index: number;
}

const ORDER_TAG = 0x0de5;
const AUGMENT_TAG = 0xa065;

export class BatchLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly augment: AugmentSpec | false;
  readonly dropLast: boolean;
  readonly norm: Normalizer;
  /** The normalisation as given (mean 0, std 1 when none was). */
  readonly normStats: NormStats;
  /** Batches per epoch. */
  readonly numBatches: number;
  private readonly reuse: boolean;
  private orderEpoch = -1;
  private orderCache: Uint32Array | undefined;
  private xBuf: Float32Array | undefined;
  private yBuf: Int32Array | undefined;
  private scratch: Float32Array;

  constructor(
    readonly ds: ImageDataset,
    opts: BatchLoaderOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`BatchLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (ds.n === 0) throw new Error(`BatchLoader: dataset ${ds.name} is empty`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.seed = opts.seed ?? 0;
    this.augment = opts.augment ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.reuse = opts.reuseBuffers ?? false;
    this.normStats = opts.norm ?? { mean: new Array(ds.c).fill(0), std: new Array(ds.c).fill(1) };
    this.norm = new Normalizer(this.normStats, ds.c);
    this.numBatches = this.dropLast ? Math.floor(ds.n / this.batchSize) : Math.ceil(ds.n / this.batchSize);
    if (this.numBatches === 0) throw new Error(`BatchLoader: dropLast with batchSize ${this.batchSize} > ${ds.n} samples leaves no batch`);
    this.scratch = new Float32Array(ds.c * ds.h * ds.w);
  }

  /** Sample order of an epoch (a permutation of 0..n-1; identity without shuffle). */
  order(epoch: number): Uint32Array {
    if (this.orderEpoch === epoch && this.orderCache) return this.orderCache;
    const o = this.shuffle
      ? new Rng(deriveSeed(this.seed, ORDER_TAG, epoch)).permutation(this.ds.n)
      : Uint32Array.from({ length: this.ds.n }, (_, i) => i);
    this.orderEpoch = epoch;
    this.orderCache = o;
    return o;
  }

  /** Builds batch `index` of `epoch` (random access; independent of which batches came before). */
  batch(epoch: number, index: number): Batch {
    const { indices, params } = this.draws(epoch, index);
    const { c, h, w } = this.ds;
    const per = c * h * w;
    const n = indices.length;
    let x: Float32Array;
    let y: Int32Array;
    if (this.reuse) {
      if (!this.xBuf) {
        this.xBuf = new Float32Array(this.batchSize * per);
        this.yBuf = new Int32Array(this.batchSize);
      }
      x = n === this.batchSize ? this.xBuf : this.xBuf.subarray(0, n * per);
      y = n === this.batchSize ? this.yBuf! : this.yBuf!.subarray(0, n);
    } else {
      x = new Float32Array(n * per);
      y = new Int32Array(n);
    }
    const dims = { c, h, w };
    for (let k = 0; k < n; k++) {
      const i = indices[k];
      augmentInto(this.ds.images, i * per, dims, params[k], this.norm, x, k * per, this.scratch);
      y[k] = this.ds.labels[i];
    }
    return { x, y, n, shape: [n, c, h, w], indices, epoch, index };
  }

  /**
   * Batch `index` of `epoch` before augmentation: the samples' dataset
   * indices, their raw uint8 images [n, C, H, W] and labels, and each
   * image's augmentation draws (identity without augmentation). batch()
   * applies them in JS; augmentBatchTensor applies the same ones on tensors.
   */
  raw(epoch: number, index: number): RawBatch {
    const { indices, params } = this.draws(epoch, index);
    const { c, h, w } = this.ds;
    const per = c * h * w;
    const images = new Uint8Array(indices.length * per);
    const labels = new Int32Array(indices.length);
    indices.forEach((i, k) => {
      images.set(this.ds.images.subarray(i * per, (i + 1) * per), k * per);
      labels[k] = this.ds.labels[i];
    });
    return { images, labels, params, n: indices.length, shape: [indices.length, c, h, w], indices, epoch, index };
  }

  private draws(epoch: number, index: number): { indices: Uint32Array; params: AugmentParams[] } {
    if (!Number.isInteger(index) || index < 0 || index >= this.numBatches) {
      throw new RangeError(`BatchLoader: batch index ${index} out of range [0, ${this.numBatches})`);
    }
    const start = index * this.batchSize;
    const n = Math.min(this.batchSize, this.ds.n - start);
    const indices = this.order(epoch).slice(start, start + n);
    const rng = this.augment ? new Rng(deriveSeed(this.seed, AUGMENT_TAG, epoch, index)) : undefined;
    const params = Array.from(indices, () => (rng ? sampleAugment(rng, this.augment as AugmentSpec) : IDENTITY_PARAMS));
    return { indices, params };
  }

  /** Iterates the batches of one epoch, optionally starting at batch `startBatch` (resume). */
  *epoch(epoch: number, opts: { startBatch?: number } = {}): Generator<Batch> {
    const start = opts.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > this.numBatches) {
      throw new RangeError(`BatchLoader: startBatch ${start} out of range [0, ${this.numBatches}]`);
    }
    for (let b = start; b < this.numBatches; b++) yield this.batch(epoch, b);
  }
}
