// From the data layer's batches to tensors (training batches augmented on
// tensors), and a plain accuracy pass over a dataset.
import type { Batch } from '../data/batchLoader';
import { augmentBatchTensor } from '../data/augment-tensor';
import { BatchLoader } from '../data/batchLoader';
import type { ImageDataset, NormStats } from '../data/types';
import type { Module } from '../nn/module';
import { tensor } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor, MemoryFormat } from '../tensor/tensor';

export function batchTensors(b: Batch, format: MemoryFormat = 'contiguous'): { x: Tensor; y: Tensor } {
  return tidy(() => {
    const x = tensor(b.x, b.shape, 'float32');
    const y = tensor(BigInt64Array.from(b.y, (v) => BigInt(v)), [b.n], 'int64');
    return { x: format === 'channels_last' ? x.contiguous('channels_last') : x, y };
  });
}

/**
 * Batch `index` of `epoch` as tensors, augmented on tensors with the
 * loader's seeded draws (the same draws batch() applies in JS).
 */
export function augmentedBatchTensors(loader: BatchLoader, epoch: number, index: number, format: MemoryFormat = 'contiguous'): LabelledBatch {
  const raw = loader.raw(epoch, index);
  return tidy(() => {
    const x = augmentBatchTensor(tensor(raw.images, raw.shape, 'uint8'), raw.params, loader.normStats);
    const y = tensor(BigInt64Array.from(raw.labels, (v) => BigInt(v)), [raw.n], 'int64');
    return { x: format === 'channels_last' ? x.contiguous('channels_last') : x, y, n: raw.n, labels: raw.labels };
  });
}

/** Batch `index` of the loader's epoch 0 without augmentation, as tensors (channels-last). */
export function plainBatchTensors(loader: BatchLoader, index: number): LabelledBatch {
  const b = loader.batch(0, index);
  return { ...batchTensors(b, 'channels_last'), n: b.n, labels: b.y };
}

export interface LabelledBatch {
  x: Tensor;
  /** int64 labels. */
  y: Tensor;
  n: number;
  labels: Int32Array;
}

/** Top-1 accuracy (%) of a classifier on a dataset, in eval mode, without augmentation. */
export function accuracy(model: Module, ds: ImageDataset, norm: NormStats, { batchSize = 256, format = 'contiguous' as MemoryFormat } = {}): number {
  const wasTraining = model.training;
  model.eval();
  const loader = new BatchLoader(ds, { batchSize, shuffle: false, norm });
  let correct = 0;
  try {
    noGrad(() => {
      for (const b of loader.epoch(0))
        tidy(() => {
          const { x, y } = batchTensors(b, format);
          correct += (model.forward(x) as Tensor).argmax(1).eq(y).sum().item();
        });
    });
  } finally {
    model.train(wasTraining);
  }
  return (100 * correct) / ds.n;
}
