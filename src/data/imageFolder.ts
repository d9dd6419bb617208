/**
 * Generic "one sub-folder per class" image datasets (root/<class>/**\/*.{jpg,jpeg,png}), like
 * torchvision's ImageFolder: classes are the sub-folder names in sorted order, files sorted within.
 * All images must have one size (given, or that of the first image); no resizing is done.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createProgress } from '../util/progress';
import { makeDataset } from './dataset';
import { decodeImage, isImageFile } from './imageDecode';
import type { ImageDataset } from './types';

export interface ImageFolderOptions {
  root: string;
  /** Expected image size; default: the size of the first image. */
  size?: number | { h: number; w: number };
  /** 3 = RGB (default), 1 = luma. */
  channels?: 1 | 3;
  /** Fixed class list (e.g. the train set's, so a test folder maps labels the same way). */
  classNames?: string[];
  name?: string;
  silent?: boolean;
}

/** Recursively lists image files under dir, sorted by path (deterministic across filesystems). */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && isImageFile(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * Decodes a list of (file, label) pairs into one dataset. Shared by ImageFolder and Tiny ImageNet.
 * `expect` undefined means: take the first image's size.
 */
export function decodeFileList(
  items: { file: string; label: number }[],
  opts: { name: string; classNames: string[]; channels: 1 | 3; expect?: { h: number; w: number }; silent?: boolean },
): ImageDataset {
  if (items.length === 0) throw new Error(`${opts.name}: no images`);
  const c = opts.channels;
  const first = opts.expect ?? decodeImage(fs.readFileSync(items[0].file), items[0].file, { channels: c });
  const { h, w } = first;
  const per = c * h * w;
  const images = new Uint8Array(items.length * per);
  const labels = new Int32Array(items.length);
  const progress = createProgress({ total: items.length, label: `decoding ${opts.name}`, unit: 'images', silent: opts.silent });
  try {
    items.forEach((it, i) => {
      decodeImage(fs.readFileSync(it.file), it.file, { channels: c, expect: { h, w }, out: images.subarray(i * per, (i + 1) * per) });
      labels[i] = it.label;
      if ((i & 255) === 255) progress.update(i + 1);
    });
    progress.update(items.length);
  } finally {
    progress.stop();
  }
  return makeDataset({ name: opts.name, images, labels, n: items.length, c, h, w, numClasses: opts.classNames.length, classNames: opts.classNames });
}

export function readImageFolder(opts: ImageFolderOptions): ImageDataset {
  const root = path.resolve(opts.root);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`ImageFolder: ${root} is not a directory`);
  const dirs = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (dirs.length === 0) throw new Error(`ImageFolder: ${root} has no class sub-folders`);
  const classNames = opts.classNames ?? dirs;
  const index = new Map(classNames.map((n, i) => [n, i]));
  const items: { file: string; label: number }[] = [];
  for (const d of dirs) {
    const label = index.get(d);
    if (label === undefined) throw new Error(`ImageFolder: ${path.join(root, d)} is not one of the known classes (${classNames.join(', ')})`);
    const files = listImages(path.join(root, d));
    if (files.length === 0) throw new Error(`ImageFolder: class folder ${path.join(root, d)} has no .jpg/.jpeg/.png images`);
    for (const file of files) items.push({ file, label });
  }
  const size = typeof opts.size === 'number' ? { h: opts.size, w: opts.size } : opts.size;
  return decodeFileList(items, {
    name: opts.name ?? path.basename(root),
    classNames,
    channels: opts.channels ?? 3,
    expect: size,
    silent: opts.silent,
  });
}
