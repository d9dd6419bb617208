/**
 * CIFAR-10 / CIFAR-100 from the official binary distributions.
 *   cifar-10-binary.tar.gz  -> cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin,
 *                              records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)
 *   cifar-100-binary.tar.gz -> cifar-100-binary/{train,test}.bin,
 *                              records of coarse byte + fine byte + 3072 pixel bytes (fine labels used)
 * The pixel layout is already planar CHW, so records copy straight into NCHW.
 * Source: a local .tar.gz, an extracted directory, or a verified download into the cache dir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cachedOrBuild, cacheFilePath, defaultCacheDir, type CarveSpec } from './cache';
import { channelStats, makeDataset } from './dataset';
import { downloadFile, md5File } from './download';
import { toSourceResult, type SourceResult } from './fashionMnist';
import { readTarMembers } from './tar';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export const CIFAR100_CLASSES = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can ' +
  'castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin ' +
  'elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster ' +
  'man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck ' +
  'pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk ' +
  'skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger ' +
  'tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm'
).split(' ');

export type CifarVariant = 'cifar10' | 'cifar100';

interface Layout {
  title: string;
  archive: string;
  dir: string;
  url: string;
  md5: string;
  trainFiles: string[];
  testFiles: string[];
  metaFile: string;
  labelBytes: number;
  classes: string[];
}

export const CIFAR_LAYOUTS: Record<CifarVariant, Layout> = {
  cifar10: {
    title: 'CIFAR-10',
    archive: 'cifar-10-binary.tar.gz',
    dir: 'cifar-10-batches-bin',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    testFiles: ['test_batch.bin'],
    metaFile: 'batches.meta.txt',
    labelBytes: 1,
    classes: CIFAR10_CLASSES,
  },
  cifar100: {
    title: 'CIFAR-100',
    archive: 'cifar-100-binary.tar.gz',
    dir: 'cifar-100-binary',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    trainFiles: ['train.bin'],
    testFiles: ['test.bin'],
    metaFile: 'fine_label_names.txt',
    labelBytes: 2,
    classes: CIFAR100_CLASSES,
  },
};

const PIXELS = 3 * 32 * 32;

export interface CifarOptions {
  variant: CifarVariant;
  /** A .tar.gz, an extracted directory (the batches dir or its parent), or a dir holding the archive. */
  root?: string;
  /** Download the archive into <cacheDir>/downloads when no root is given and it is not there yet. */
  download?: boolean;
  /** Overrides of the official address and checksum (tests serve their own archives). */
  url?: string;
  md5?: string;
  cacheDir?: string | false;
  silent?: boolean;
  warn?: (msg: string) => void;
  carve?: CarveSpec;
}

/** Parses concatenated records; errors name `file` and the offending record. */
export function parseCifarRecords(
  buf: Uint8Array,
  opts: { variant: CifarVariant; file: string },
): { images: Uint8Array; labels: Int32Array; n: number } {
  const L = CIFAR_LAYOUTS[opts.variant];
  const rec = L.labelBytes + PIXELS;
  if (buf.length === 0) throw new Error(`${L.title}: ${opts.file} is empty`);
  if (buf.length % rec !== 0) {
    throw new Error(
      `${L.title}: ${opts.file} has ${buf.length} bytes, not a multiple of the record size ${rec} (truncated or not a ${L.title} binary batch)`,
    );
  }
  const n = buf.length / rec;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const K = L.classes.length;
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    if (opts.variant === 'cifar100' && buf[o] >= 20) {
      throw new Error(`${L.title}: ${opts.file} record ${i}: coarse label ${buf[o]} is out of range [0, 20)`);
    }
    const y = buf[o + L.labelBytes - 1];
    if (y >= K) throw new Error(`${L.title}: ${opts.file} record ${i}: label ${y} is out of range [0, ${K})`);
    labels[i] = y;
    images.set(buf.subarray(o + L.labelBytes, o + rec), i * PIXELS);
  }
  return { images, labels, n };
}

/** Where the raw files come from: an archive, or a directory holding the .bin files. */
type RawSource = { kind: 'archive'; file: string } | { kind: 'dir'; dir: string };

function hasAll(dir: string, files: string[]): boolean {
  return files.every((f) => fs.existsSync(path.join(dir, f)));
}

function locateLocal(root: string, L: Layout): RawSource {
  const abs = path.resolve(root);
  if (!fs.existsSync(abs)) throw new Error(`${L.title}: root ${abs} does not exist`);
  if (fs.statSync(abs).isFile()) return { kind: 'archive', file: abs };
  const need = [...L.trainFiles, ...L.testFiles];
  if (hasAll(abs, need)) return { kind: 'dir', dir: abs };
  if (hasAll(path.join(abs, L.dir), need)) return { kind: 'dir', dir: path.join(abs, L.dir) };
  if (fs.existsSync(path.join(abs, L.archive))) return { kind: 'archive', file: path.join(abs, L.archive) };
  const missing = need.filter((f) => !fs.existsSync(path.join(abs, f)) && !fs.existsSync(path.join(abs, L.dir, f)));
  throw new Error(
    `${L.title}: no data under ${abs}: expected ${L.archive}, or ${L.dir}/ with ${need.join(', ')} (missing: ${missing.join(', ')})`,
  );
}

function statId(files: string[]): string {
  return files
    .map((f) => {
      const s = fs.statSync(f);
      return `${f}:${s.size}:${Math.round(s.mtimeMs)}`;
    })
    .join('|');
}

async function readRawFiles(src: RawSource, L: Layout, silent?: boolean): Promise<{ files: Map<string, Buffer>; where: string }> {
  const wanted = [...L.trainFiles, ...L.testFiles, L.metaFile];
  const files = new Map<string, Buffer>();
  if (src.kind === 'dir') {
    for (const f of wanted) {
      const p = path.join(src.dir, f);
      if (fs.existsSync(p)) files.set(f, fs.readFileSync(p));
    }
    return { files, where: src.dir };
  }
  // Members are matched by base name inside the archive (normally under L.dir/).
  const members = await readTarMembers(src.file, {
    want: (name) => wanted.includes(path.posix.basename(name)),
    silent,
    label: `reading ${path.basename(src.file)}`,
  });
  for (const [name, buf] of members) files.set(path.posix.basename(name), buf);
  return { files, where: src.file };
}

function classNamesFrom(meta: Buffer | undefined, L: Layout, warn: (m: string) => void, where: string): string[] {
  if (!meta) return L.classes.slice();
  const names = meta
    .toString('utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== L.classes.length) {
    warn(`${L.title}: ${L.metaFile} in ${where} lists ${names.length} names, expected ${L.classes.length}; using built-in names`);
    return L.classes.slice();
  }
  return names;
}

async function convert(src: RawSource, L: Layout, variant: CifarVariant, opts: CifarOptions, warn: (m: string) => void) {
  const { files, where } = await readRawFiles(src, L, opts.silent);
  const missing = [...L.trainFiles, ...L.testFiles].filter((f) => !files.has(f));
  if (missing.length) throw new Error(`${L.title}: ${where} lacks ${missing.map((f) => `${L.dir}/${f}`).join(', ')}`);
  const classNames = classNamesFrom(files.get(L.metaFile), L, warn, where);
  const build = (list: string[], name: string) => {
    const parts = list.map((f) => parseCifarRecords(files.get(f)!, { variant, file: `${where}:${f}` }));
    const n = parts.reduce((a, p) => a + p.n, 0);
    const images = new Uint8Array(n * PIXELS);
    const labels = new Int32Array(n);
    let at = 0;
    for (const p of parts) {
      images.set(p.images, at * PIXELS);
      labels.set(p.labels, at);
      at += p.n;
    }
    return makeDataset({ name, images, labels, n, c: 3, h: 32, w: 32, numClasses: L.classes.length, classNames });
  };
  const train = build(L.trainFiles, variant);
  const test = build(L.testFiles, `${variant}-test`);
  return { name: variant, splits: { train, test }, meta: { notes: [], stats: channelStats(train), source: where } };
}

export async function loadCifarSource(opts: CifarOptions): Promise<SourceResult> {
  const variant = opts.variant;
  const L = CIFAR_LAYOUTS[variant];
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const cacheDirResolved = opts.cacheDir === false ? undefined : (opts.cacheDir ?? defaultCacheDir());
  const md5 = opts.md5 ?? L.md5;
  let src: RawSource | undefined;
  let sourceId: string;
  if (opts.root) {
    src = locateLocal(opts.root, L);
    const files =
      src.kind === 'archive' ? [src.file] : [...L.trainFiles, ...L.testFiles].map((f) => path.join((src as { dir: string }).dir, f));
    sourceId = `${variant};local;${statId(files)}`;
  } else {
    sourceId = `${variant};archive-md5=${md5}`;
  }
  const cacheFile = cacheFilePath(opts.cacheDir, `${variant}.ztwds`);
  const r = await cachedOrBuild(
    cacheFile,
    sourceId,
    async () => {
      if (!src) {
        if (!cacheDirResolved) {
          throw new Error(`${L.title}: no root given and caching is off, so there is nowhere to download to; pass root`);
        }
        const archive = path.join(cacheDirResolved, 'downloads', L.archive);
        if (fs.existsSync(archive)) {
          const got = await md5File(archive);
          if (got !== md5.toLowerCase()) {
            throw new Error(`${L.title}: ${archive} has md5 ${got}, expected ${md5}; delete it and download again`);
          }
        } else if (opts.download) {
          await downloadFile({ url: opts.url ?? L.url, dest: archive, md5, silent: opts.silent });
        } else {
          throw new Error(
            `${L.title}: not found. Pass root (the ${L.archive} or its extracted ${L.dir}/), or enable download to fetch ${opts.url ?? L.url} into ${path.dirname(archive)}`,
          );
        }
        src = { kind: 'archive', file: archive };
      }
      return convert(src, L, variant, opts, warn);
    },
    { warn, carve: opts.carve },
  );
  return toSourceResult(r, cacheFile);
}
