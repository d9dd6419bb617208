// The tensor augmentation equals the typed-array one image for image, with
// the loader's own seeded draws: crop, flip, colour jitter, normalisation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentBatchTensor } from '../../src/data/augment-tensor';
import { BatchLoader } from '../../src/data/batchLoader';
import type { AugmentSpec, ImageDataset } from '../../src/data/types';
import { tensor } from '../../src/tensor/create';
import { tidy } from '../../src/tensor/scope';
import { setNumThreads } from '../../src/tensor/native';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

function dataset(c: number, h: number, w: number, n: number): ImageDataset {
  let s = 12345;
  const images = Uint8Array.from({ length: n * c * h * w }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 255);
  return { name: 'synthetic', n, c, h, w, images, labels: Int32Array.from({ length: n }, (_, i) => i % 3), numClasses: 3 } as ImageDataset;
}

const specs: { name: string; c: number; spec: AugmentSpec }[] = [
  { name: 'grey, crop 4 + flip', c: 1, spec: { cropPadding: 4, flip: true } },
  { name: 'RGB, crop 2 + flip + colour jitter', c: 3, spec: { cropPadding: 2, flip: true, colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 } } },
  { name: 'grey, colour jitter without crop', c: 1, spec: { cropPadding: 0, flip: false, colorJitter: { brightness: 0.5, contrast: 0.5, saturation: 0.5 } } },
  { name: 'no augmentation', c: 3, spec: { cropPadding: 0, flip: false } },
];

for (const { name, c, spec } of specs) {
  test(`augmentBatchTensor equals the typed-array augmentation (${name})`, () => {
    const ds = dataset(c, 9, 7, 23);
    const norm = { mean: Array.from({ length: c }, (_, i) => 0.3 + 0.1 * i), std: Array.from({ length: c }, (_, i) => 0.2 + 0.05 * i) };
    const loader = new BatchLoader(ds, { batchSize: 10, seed: 5, augment: spec, norm });
    let moved = 0;
    for (let b = 0; b < loader.numBatches; b++) {
      const want = loader.batch(1, b);
      const raw = loader.raw(1, b);
      assert.deepEqual(Array.from(raw.indices), Array.from(want.indices));
      assert.deepEqual(Array.from(raw.labels), Array.from(want.y));
      moved += raw.params.filter((p) => p.dy || p.dx || p.flip || p.jitter).length;
      tidy(() => {
        const x = augmentBatchTensor(tensor(raw.images, raw.shape, 'uint8'), raw.params, norm);
        assert.deepEqual(x.shape, want.shape);
        assert.equal(x.dtype, 'float32');
        assertClose(x.toNumbers(), Array.from(want.x), { atol: 2e-5, rtol: 1e-5, what: `${name}, batch ${b}` });
      });
    }
    if (spec.cropPadding || spec.flip || spec.colorJitter) assert.ok(moved > 10, 'the draws did change most images');
  });
}

test('augmentBatchTensor rejects wrong dtypes, shapes and parameter counts', () => {
  const ds = dataset(1, 4, 4, 2);
  const loader = new BatchLoader(ds, { batchSize: 2, augment: { cropPadding: 1, flip: true } });
  const raw = loader.raw(0, 0);
  const norm = { mean: [0.5], std: [0.5] };
  tidy(() => {
    assert.throws(() => augmentBatchTensor(tensor(Float32Array.from(raw.images), raw.shape), raw.params, norm), /uint8/);
    assert.throws(() => augmentBatchTensor(tensor(raw.images, raw.shape, 'uint8'), raw.params.slice(1), norm), /1 parameter sets for 2 images/);
    assert.throws(() => augmentBatchTensor(tensor(raw.images, raw.shape, 'uint8'), raw.params, { mean: [0, 0], std: [1, 1] }), /2 channels/);
  });
  assert.throws(() => loader.raw(0, 1), /out of range/);
});
