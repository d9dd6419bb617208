/** Construction, validation and index-based slicing of ImageDatasets. */
import { createHash } from 'node:crypto';
import { Rng } from './rng';
import type { ImageDataset, NormStats } from './types';

/** Creates a dataset after checking that buffers and shape agree and every label is in range. */
export function makeDataset(
  d: Omit<ImageDataset, 'numClasses'> & { numClasses?: number },
  opts: { source?: string } = {},
): ImageDataset {
  const where = opts.source ? ` (${opts.source})` : '';
  const numClasses = d.numClasses ?? d.classNames.length;
  const per = d.c * d.h * d.w;
  if (d.images.length !== d.n * per) {
    throw new Error(`${d.name}${where}: images hold ${d.images.length} bytes, expected n*c*h*w = ${d.n}*${d.c}*${d.h}*${d.w} = ${d.n * per}`);
  }
  if (d.labels.length !== d.n) throw new Error(`${d.name}${where}: ${d.labels.length} labels for ${d.n} images`);
  if (d.classNames.length !== numClasses) {
    throw new Error(`${d.name}${where}: ${d.classNames.length} class names for ${numClasses} classes`);
  }
  checkLabels(d.labels, numClasses, `${d.name}${where}`);
  return { ...d, numClasses };
}

/** Throws naming the first offending index if a label is outside [0, numClasses). */
export function checkLabels(labels: Int32Array, numClasses: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y < 0 || y >= numClasses) {
      throw new Error(`${what}: label ${y} at index ${i} is out of range [0, ${numClasses})`);
    }
  }
}

/** A new dataset holding the given samples, in the given order (copies pixels). */
export function gather(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  const per = ds.c * ds.h * ds.w;
  const n = indices.length;
  const images = new Uint8Array(n * per);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < ds.n)) throw new RangeError(`gather: index ${i} out of range [0, ${ds.n})`);
    images.set(ds.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.labels[i];
  }
  return { ...ds, name, images, labels, n };
}

export function classCounts(ds: Pick<ImageDataset, 'labels' | 'numClasses'>): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.labels.length; i++) counts[ds.labels[i]]++;
  return counts;
}

function indicesByClass(ds: ImageDataset): number[][] {
  const by: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.n; i++) by[ds.labels[i]].push(i);
  return by;
}

/**
 * Splits off a class-stratified validation set of `size` samples with a fixed seed. Each class
 * contributes in proportion to its size (largest-remainder rounding), e.g. 500 per class for
 * Fashion-MNIST's 10 x 6,000 with size 5,000. Both parts keep the original relative order.
 * `inPlace: true` compacts the training samples inside ds.images (destroying `ds`) instead of
 * copying them: with a freshly loaded cache this avoids touching another ~60-150 MB of memory.
 */
export function carveValidation(
  ds: ImageDataset,
  opts: { size: number; seed?: number; inPlace?: boolean },
): { train: ImageDataset; val: ImageDataset } {
  const isVal = validationMask(ds, opts.size, opts.seed ?? 0);
  const tr: number[] = [];
  const va: number[] = [];
  for (let i = 0; i < ds.n; i++) (isVal[i] ? va : tr).push(i);
  const val = gather(ds, va, `${ds.name}-val`);
  if (!opts.inPlace) return { train: gather(ds, tr, ds.name), val };
  const per = ds.c * ds.h * ds.w;
  // Stable forward compaction (destination <= source, so copyWithin is safe), one call per run of
  // consecutive training samples: there are only about valSize runs.
  const labels = new Int32Array(tr.length);
  let k = 0;
  while (k < tr.length) {
    let end = k + 1;
    while (end < tr.length && tr[end] === tr[end - 1] + 1) end++;
    const i = tr[k];
    if (i !== k) ds.images.copyWithin(k * per, i * per, (i + end - k) * per);
    for (let j = k; j < end; j++) labels[j] = ds.labels[tr[j]];
    k = end;
  }
  const train = { ...ds, images: ds.images.subarray(0, tr.length * per), labels, n: tr.length };
  return { train, val };
}

/** Which samples carveValidation puts in the validation set (1 = val). */
export function validationMask(ds: ImageDataset, size: number, seed: number): Uint8Array {
  if (!Number.isInteger(size) || size <= 0 || size >= ds.n) {
    throw new RangeError(`carveValidation: size ${size} must be an integer in [1, ${ds.n - 1}] for ${ds.name}`);
  }
  const rng = new Rng(seed);
  const by = indicesByClass(ds);
  // Largest-remainder apportionment so the quotas sum to exactly `size`.
  const exact = by.map((idx) => (idx.length * size) / ds.n);
  const quota = exact.map(Math.floor);
  let rest = size - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((e, k) => [e - Math.floor(e), k] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let r = 0; rest > 0; r++, rest--) quota[order[r % order.length][1]]++;
  const isVal = new Uint8Array(ds.n);
  by.forEach((idx, k) => {
    const shuffled = rng.shuffle(idx.slice());
    for (let j = 0; j < quota[k]; j++) isVal[shuffled[j]] = 1;
  });
  return isVal;
}

/**
 * A small random subset for quick runs: class-balanced (round-robin over classes, so classes
 * with too few samples are topped up by the others), kept in original order.
 */
export function subset(ds: ImageDataset, n: number, seed = 0): ImageDataset {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`subset: n must be a non-negative integer, got ${n}`);
  if (n >= ds.n) return ds;
  const rng = new Rng(seed);
  const by = indicesByClass(ds).map((idx) => rng.shuffle(idx));
  const classOrder = rng.permutation(ds.numClasses);
  const pos = new Array<number>(ds.numClasses).fill(0);
  const chosen: number[] = [];
  while (chosen.length < n) {
    for (let k = 0; k < classOrder.length && chosen.length < n; k++) {
      const c = classOrder[k];
      if (pos[c] < by[c].length) chosen.push(by[c][pos[c]++]);
    }
  }
  chosen.sort((a, b) => a - b);
  return gather(ds, chosen, ds.name);
}

/** sha256 over shape, labels and pixels; for determinism checks and provenance records. */
export function hashDataset(ds: ImageDataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([ds.n, ds.c, ds.h, ds.w, ds.numClasses]));
  h.update(new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength));
  h.update(ds.images);
  return h.digest('hex');
}

/** Per-channel mean and (population) std of pixels scaled to [0,1], via byte histograms. */
export function channelStats(ds: ImageDataset): NormStats {
  const plane = ds.h * ds.w;
  const hist = new Float64Array(ds.c * 256);
  // Four interleaved counter tables: images are full of equal values (zero borders), and a single
  // table serialises on store-to-load forwarding of the same counter; this is ~3x faster.
  const counts = new Uint32Array(1024);
  const img = ds.images;
  // Flush the Uint32 counters into the float histogram before they could overflow.
  const flushEvery = Math.max(1, Math.floor(2 ** 31 / plane));
  for (let ch = 0; ch < ds.c; ch++) {
    for (let i0 = 0; i0 < ds.n; i0 += flushEvery) {
      counts.fill(0);
      for (let i = i0, iEnd = Math.min(ds.n, i0 + flushEvery); i < iEnd; i++) {
        const base = (i * ds.c + ch) * plane;
        const end = base + plane;
        let p = base;
        for (; p + 3 < end; p += 4) {
          counts[img[p]]++;
          counts[256 + img[p + 1]]++;
          counts[512 + img[p + 2]]++;
          counts[768 + img[p + 3]]++;
        }
        for (; p < end; p++) counts[img[p]]++;
      }
      for (let v = 0; v < 256; v++) hist[ch * 256 + v] += counts[v] + counts[256 + v] + counts[512 + v] + counts[768 + v];
    }
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let ch = 0; ch < ds.c; ch++) {
    let s = 0;
    let s2 = 0;
    let cnt = 0;
    for (let v = 0; v < 256; v++) {
      const k = hist[ch * 256 + v];
      const x = v / 255;
      s += k * x;
      s2 += k * x * x;
      cnt += k;
    }
    const m = cnt > 0 ? s / cnt : 0;
    mean.push(m);
    std.push(Math.sqrt(Math.max(s2 / cnt - m * m, 0)) || 1);
  }
  return { mean, std };
}
