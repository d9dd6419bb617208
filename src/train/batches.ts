// From the data layer's typed-array batches to tensors, and a plain
// accuracy pass over a dataset.
import type { Batch } from '../data/batchLoader';
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
