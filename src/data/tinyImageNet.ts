/**
 * Tiny ImageNet (tiny-imagenet-200): train/<wnid>/images/*.JPEG (500 per class) and
 * val/images/*.JPEG labelled by val/val_annotations.txt ("file<TAB>wnid<TAB>box..."); wnids.txt
 * lists the 200 classes, words.txt (optional) names them. All images must be 64x64 RGB (greyscale
 * JPEGs are expanded to RGB). The labelled official val set is our test set (the official test
 * set has no labels). Classes are the sorted wnids, as an ImageFolder over train/ would give.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cachedOrBuild, cacheFilePath, type CarveSpec } from './cache';
import { channelStats } from './dataset';
import { toSourceResult, type SourceResult } from './fashionMnist';
import { decodeFileList, listImages } from './imageFolder';

export interface TinyImageNetOptions {
  /** The tiny-imagenet-200 directory, or a directory containing it. */
  root: string;
  cacheDir?: string | false;
  silent?: boolean;
  warn?: (msg: string) => void;
  carve?: CarveSpec;
}

const SIZE = 64;

export function locateTinyImageNet(root: string): string {
  const abs = path.resolve(root);
  for (const cand of [abs, path.join(abs, 'tiny-imagenet-200')]) {
    if (fs.existsSync(path.join(cand, 'wnids.txt'))) return cand;
  }
  throw new Error(
    `Tiny ImageNet: ${abs} has no wnids.txt (nor tiny-imagenet-200/wnids.txt); download and extract http://cs231n.stanford.edu/tiny-imagenet-200.zip and pass its folder`,
  );
}

function readLines(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

function classNamesFor(dir: string, wnids: string[]): string[] {
  const words = path.join(dir, 'words.txt');
  if (!fs.existsSync(words)) return wnids.slice();
  const map = new Map<string, string>();
  for (const line of readLines(words)) {
    const [id, text] = line.split('\t');
    if (id && text) map.set(id, text.split(',')[0].trim());
  }
  return wnids.map((id) => map.get(id) ?? id);
}

function convert(dir: string, opts: TinyImageNetOptions) {
  const wnids = [...new Set(readLines(path.join(dir, 'wnids.txt')))].sort();
  const index = new Map(wnids.map((id, i) => [id, i]));
  const classNames = classNamesFor(dir, wnids);
  const trainItems: { file: string; label: number }[] = [];
  for (const [id, label] of index) {
    const imgDir = path.join(dir, 'train', id, 'images');
    if (!fs.existsSync(imgDir)) throw new Error(`Tiny ImageNet: missing folder ${imgDir} for class ${id} listed in wnids.txt`);
    const files = listImages(imgDir);
    if (files.length === 0) throw new Error(`Tiny ImageNet: ${imgDir} has no images`);
    for (const file of files) trainItems.push({ file, label });
  }
  const ann = path.join(dir, 'val', 'val_annotations.txt');
  if (!fs.existsSync(ann)) throw new Error(`Tiny ImageNet: missing ${ann}`);
  const testItems: { file: string; label: number }[] = [];
  readLines(ann).forEach((line, i) => {
    const [file, id] = line.split('\t');
    const label = index.get(id);
    if (!file || label === undefined) {
      throw new Error(`Tiny ImageNet: ${ann} line ${i + 1}: ${id ? `unknown wnid '${id}' (not in wnids.txt)` : 'expected "file<TAB>wnid<TAB>..."'}`);
    }
    const p = path.join(dir, 'val', 'images', file);
    if (!fs.existsSync(p)) throw new Error(`Tiny ImageNet: ${ann} line ${i + 1} names ${p}, which does not exist`);
    testItems.push({ file: p, label });
  });
  testItems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const common = { classNames, channels: 3 as const, expect: { h: SIZE, w: SIZE }, silent: opts.silent };
  const train = decodeFileList(trainItems, { name: 'tiny-imagenet', ...common });
  const test = decodeFileList(testItems, { name: 'tiny-imagenet-test', ...common });
  return { name: 'tiny-imagenet', splits: { train, test }, meta: { notes: [], stats: channelStats(train) } };
}

export async function loadTinyImageNetSource(opts: TinyImageNetOptions): Promise<SourceResult> {
  const dir = locateTinyImageNet(opts.root);
  const stamp = ['wnids.txt', path.join('val', 'val_annotations.txt')]
    .map((f) => path.join(dir, f))
    .filter((f) => fs.existsSync(f))
    .map((f) => {
      const s = fs.statSync(f);
      return `${f}:${s.size}:${Math.round(s.mtimeMs)}`;
    })
    .join('|');
  const cacheFile = cacheFilePath(opts.cacheDir, 'tiny-imagenet.ztwds');
  const r = await cachedOrBuild(cacheFile, `tiny-imagenet;${stamp}`, async () => convert(dir, opts), {
    warn: opts.warn,
    carve: opts.carve,
  });
  return toSourceResult(r, cacheFile);
}
