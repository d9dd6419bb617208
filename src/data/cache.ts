/**
 * Compact binary cache for converted datasets, so a run loads in well under a second instead of
 * re-parsing JSON / archives / JPEGs.
 *
 * Layout (little-endian):
 *   8 bytes  magic "ZTWDS01\n"
 *   4 bytes  uint32 header length L
 *   L bytes  UTF-8 JSON header (CacheHeader), space-padded so the payload starts 8-aligned
 *   payload  per split: images (uint8, n*c*h*w) then labels (int32, n), each 8-aligned
 * Written with writeFileAtomic, so a crash never leaves a truncated cache under the final name.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanStaleTemporaries, writeFileAtomic } from '../util/atomic';
import { carveValidation, checkLabels, makeDataset, validationMask } from './dataset';
import type { ImageDataset } from './types';

const MAGIC = 'ZTWDS01\n';
export const CACHE_FORMAT_VERSION = 1;

interface SplitEntry {
  key: string;
  name: string;
  n: number;
  c: number;
  h: number;
  w: number;
  imagesOffset: number;
  labelsOffset: number;
}

interface CacheHeader {
  version: number;
  name: string;
  numClasses: number;
  classNames: string[];
  /** Identifies the source the cache was built from; a mismatch means "rebuild". */
  sourceId: string;
  splits: SplitEntry[];
  totalBytes: number;
  meta: Record<string, unknown>;
}

export interface CachedData {
  name: string;
  sourceId: string;
  splits: Record<string, ImageDataset>;
  meta: Record<string, unknown>;
}

const align8 = (x: number): number => Math.ceil(x / 8) * 8;

/** Walks up from this file to the ztw package root, so the cache lands in the repo whatever the cwd. */
function findRepoRoot(): string | undefined {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if (JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'ztw') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** $ZTW_CACHE, else <repo>/.cache/ztw, else <cwd>/.cache/ztw. */
export function defaultCacheDir(): string {
  if (process.env.ZTW_CACHE) return path.resolve(process.env.ZTW_CACHE);
  return path.join(findRepoRoot() ?? process.cwd(), '.cache', 'ztw');
}

export function writeDatasetCache(
  file: string,
  data: { name: string; sourceId: string; splits: Record<string, ImageDataset>; meta?: Record<string, unknown> },
): void {
  if (os.endianness() !== 'LE') throw new Error('dataset cache: big-endian hosts are not supported');
  const keys = Object.keys(data.splits);
  if (keys.length === 0) throw new Error('dataset cache: no splits to write');
  const first = data.splits[keys[0]];
  const entries: SplitEntry[] = [];
  let off = 0;
  for (const key of keys) {
    const d = data.splits[key];
    const imagesOffset = off;
    off = align8(off + d.images.byteLength);
    const labelsOffset = off;
    off = align8(off + d.labels.byteLength);
    entries.push({ key, name: d.name, n: d.n, c: d.c, h: d.h, w: d.w, imagesOffset, labelsOffset });
  }
  const header: CacheHeader = {
    version: CACHE_FORMAT_VERSION,
    name: data.name,
    numClasses: first.numClasses,
    classNames: first.classNames,
    sourceId: data.sourceId,
    splits: entries,
    totalBytes: off,
    meta: data.meta ?? {},
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = align8(MAGIC.length + 4 + json.length) - (MAGIC.length + 4 + json.length);
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(json.length);
  const chunks: Uint8Array[] = [Buffer.from(MAGIC, 'latin1'), lenBuf, json];
  let written = 0;
  const padTo = (target: number): void => {
    if (target > written) chunks.push(new Uint8Array(target - written));
    written = target;
  };
  keys.forEach((key, k) => {
    const d = data.splits[key];
    padTo(entries[k].imagesOffset);
    chunks.push(d.images);
    written += d.images.byteLength;
    padTo(entries[k].labelsOffset);
    chunks.push(new Uint8Array(d.labels.buffer, d.labels.byteOffset, d.labels.byteLength));
    written += d.labels.byteLength;
  });
  padTo(off);
  writeFileAtomic(file, chunks);
}

/** Carve a class-stratified validation set out of the training split while reading (see carveValidation). */
export interface CarveSpec {
  size: number;
  seed: number;
}

export interface ReadCacheOptions {
  /** Split `train` into train + val on the fly, reading each sample straight to its final place. */
  carve?: CarveSpec;
}

function readExactly(fd: number, buf: Uint8Array, pos: number, file: string): void {
  let done = 0;
  while (done < buf.byteLength) {
    const n = fs.readSync(fd, buf, done, Math.min(buf.byteLength - done, 1 << 30), pos + done);
    if (n === 0) throw new Error(`dataset cache ${file}: unexpected end of file; delete it to rebuild`);
    done += n;
  }
}

/** A read descriptor for file, or undefined when it does not exist. */
function openIfExists(file: string): number | undefined {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Reads a cache file. Returns undefined if it does not exist; throws (naming the file) if it is
 * corrupt or truncated. Each split gets its own buffers, filled by positioned reads: every byte
 * is written exactly once (first-touch page faults dominate load time on large sets), and with
 * `carve` the validation carve costs no extra copy.
 */
export function readDatasetCache(file: string, opts: ReadCacheOptions = {}): CachedData | undefined {
  const fd = openIfExists(file);
  if (fd === undefined) return undefined;
  try {
    const bad = (why: string): Error => new Error(`dataset cache ${file}: ${why}; delete it to rebuild`);
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(12);
    if (size < 12) throw bad('not a ztw dataset cache (too short)');
    readExactly(fd, head, 0, file);
    if (head.toString('latin1', 0, 8) !== MAGIC) throw bad('not a ztw dataset cache (bad magic)');
    const hlen = head.readUInt32LE(8);
    if (12 + hlen > size) throw bad('truncated header');
    const hbuf = Buffer.alloc(hlen);
    readExactly(fd, hbuf, 12, file);
    let header: CacheHeader;
    try {
      header = JSON.parse(hbuf.toString('utf8')) as CacheHeader;
    } catch {
      throw bad('unreadable header');
    }
    if (header.version !== CACHE_FORMAT_VERSION) throw bad(`format version ${header.version}, expected ${CACHE_FORMAT_VERSION}`);
    const base = 12 + hlen;
    if (size !== base + header.totalBytes) {
      throw bad(`size ${size} bytes, header says ${base + header.totalBytes} (truncated or corrupt)`);
    }
    const common = { numClasses: header.numClasses, classNames: header.classNames };
    const splits: Record<string, ImageDataset> = {};
    for (const e of header.splits) {
      const per = e.c * e.h * e.w;
      const labels = new Int32Array(e.n);
      readExactly(fd, new Uint8Array(labels.buffer), base + e.labelsOffset, file);
      const meta = { name: e.name, n: e.n, c: e.c, h: e.h, w: e.w, ...common };
      if (opts.carve && e.key === 'train') {
        checkLabels(labels, header.numClasses, `${e.name} (${file})`);
        const isVal = validationMask({ ...meta, labels, images: new Uint8Array(0) }, opts.carve.size, opts.carve.seed);
        const nVal = isVal.reduce((a, b) => a + b, 0);
        const part = { tr: { images: new Uint8Array((e.n - nVal) * per), labels: new Int32Array(e.n - nVal), k: 0 }, va: { images: new Uint8Array(nVal * per), labels: new Int32Array(nVal), k: 0 } };
        // One positioned read per run of consecutive samples going to the same side.
        let i = 0;
        while (i < e.n) {
          let j = i + 1;
          while (j < e.n && isVal[j] === isVal[i]) j++;
          const dst = isVal[i] ? part.va : part.tr;
          readExactly(fd, dst.images.subarray(dst.k * per, (dst.k + j - i) * per), base + e.imagesOffset + i * per, file);
          dst.labels.set(labels.subarray(i, j), dst.k);
          dst.k += j - i;
          i = j;
        }
        splits.train = makeDataset({ ...meta, name: e.name, images: part.tr.images, labels: part.tr.labels, n: part.tr.labels.length }, { source: file });
        splits.val = makeDataset({ ...meta, name: `${e.name}-val`, images: part.va.images, labels: part.va.labels, n: nVal }, { source: file });
        continue;
      }
      const images = new Uint8Array(e.n * per);
      readExactly(fd, images, base + e.imagesOffset, file);
      splits[e.key] = makeDataset({ ...meta, images, labels }, { source: file });
    }
    return { name: header.name, sourceId: header.sourceId, splits, meta: header.meta };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Returns the cached splits for (file, sourceId), or builds them with `build`, writes the cache
 * and returns them. A cache from another source or an unreadable one is rebuilt (with a warning).
 * With `carve`, the result has train (carved), val and test.
 */
export async function cachedOrBuild(
  file: string | undefined,
  sourceId: string,
  build: () => Promise<{ name: string; splits: Record<string, ImageDataset>; meta?: Record<string, unknown> }>,
  opts: { warn?: (msg: string) => void; carve?: CarveSpec } = {},
): Promise<CachedData & { fromCache: boolean }> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  if (file) {
    let hit: CachedData | undefined;
    try {
      // Header first (cheap) so a stale cache is not read in full.
      const id = readCacheSourceId(file);
      if (id !== undefined && id !== sourceId) warn(`dataset cache ${file} was built from another source (${id}); rebuilding`);
      else hit = readDatasetCache(file, { carve: opts.carve });
    } catch (e) {
      if (e instanceof RangeError) throw e; // bad carve size: the caller's mistake, not the cache's
      warn(`${(e as Error).message}; rebuilding`);
    }
    if (hit) return { ...hit, fromCache: true };
  }
  const built = await build();
  if (file) {
    // Temporaries of a crashed earlier conversion would otherwise sit in the cache dir forever.
    cleanStaleTemporaries(path.dirname(file));
    writeDatasetCache(file, { ...built, sourceId });
  }
  const splits = { ...built.splits };
  if (opts.carve) {
    // Fresh buffers from build(): compact in place rather than copying.
    const { train, val } = carveValidation(splits.train, { ...opts.carve, inPlace: true });
    splits.train = train;
    splits.val = val;
  }
  return { name: built.name, sourceId, splits, meta: built.meta ?? {}, fromCache: false };
}

/** The sourceId recorded in a cache header; undefined if the file does not exist. */
export function readCacheSourceId(file: string): string | undefined {
  const fd = openIfExists(file);
  if (fd === undefined) return undefined;
  try {
    const head = Buffer.alloc(12);
    if (fs.readSync(fd, head, 0, 12, 0) !== 12 || head.toString('latin1', 0, 8) !== MAGIC) {
      throw new Error(`dataset cache ${file}: not a ztw dataset cache (bad magic); delete it to rebuild`);
    }
    const hlen = head.readUInt32LE(8);
    const hbuf = Buffer.alloc(hlen);
    if (fs.readSync(fd, hbuf, 0, hlen, 12) !== hlen) throw new Error(`dataset cache ${file}: truncated header; delete it to rebuild`);
    try {
      return String((JSON.parse(hbuf.toString('utf8')) as CacheHeader).sourceId);
    } catch {
      throw new Error(`dataset cache ${file}: unreadable header; delete it to rebuild`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Resolves a cache file name against an option value: false = no cache, undefined = default dir. */
export function cacheFilePath(cacheDir: string | false | undefined, fileName: string): string | undefined {
  if (cacheDir === false) return undefined;
  return path.join(cacheDir ?? defaultCacheDir(), fileName);
}
