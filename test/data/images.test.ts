import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as jpeg from 'jpeg-js';
import { decodeImage } from '../../src/data/imageDecode';
import { readImageFolder } from '../../src/data/imageFolder';
import { loadTinyImageNetSource } from '../../src/data/tinyImageNet';
import { classCounts } from '../../src/data/dataset';
import { loadDataset } from '../../src/data/registry';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-img-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let count = 0;
const fresh = (): string => {
  const d = path.join(root, `d${count++}`);
  fs.mkdirSync(d);
  return d;
};

/** Solid-colour JPEG (JPEG is lossy, but a flat colour survives within a few levels). Memoised: jpeg-js encoding is slow. */
const jpegMemo = new Map<string, Buffer>();
function solidJpeg(w: number, h: number, rgb: [number, number, number]): Buffer {
  const key = `${w}x${h}:${rgb.join(',')}`;
  let hit = jpegMemo.get(key);
  if (!hit) jpegMemo.set(key, (hit = encodeSolid(w, h, rgb)));
  return hit;
}
function encodeSolid(w: number, h: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let p = 0; p < w * h; p++) data.set([rgb[0], rgb[1], rgb[2], 255], p * 4);
  return jpeg.encode({ width: w, height: h, data }, 95).data;
}

function write(file: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

const colour = (k: number): [number, number, number] => [40 + 80 * k, 200 - 60 * k, 100];
const near = (a: number, b: number, tol = 4): boolean => Math.abs(a - b) <= tol;

/** PNG encoder for tests: RGB 8-bit, row filters cycling 0..4, so the decoder's unfiltering is exercised. */
function png(w: number, h: number, px: (x: number, y: number) => [number, number, number]): Buffer {
  const stride = w * 3;
  const raw = Buffer.alloc(h * (stride + 1));
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < h; y++) {
    const line = Buffer.alloc(stride);
    for (let x = 0; x < w; x++) line.set(px(x, y), x * 3);
    const f = y % 5;
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? line[i - 3] : 0;
      const b = prev[i];
      const c = i >= 3 ? prev[i - 3] : 0;
      const p = a + b - c;
      const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, pr][f];
      raw[y * (stride + 1) + 1 + i] = (line[i] - pred) & 255;
    }
    prev = line;
  }
  const chunk = (type: string, body: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, Buffer.from(type, 'latin1'), body, Buffer.alloc(4)]); // CRC unchecked by the decoder
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('PNG decoder handles all five row filters exactly', () => {
  const f = (x: number, y: number): [number, number, number] => [(x * 37 + y * 11) & 255, (x * y) & 255, (255 - x * 5 - y) & 255];
  const d = decodeImage(png(9, 10, f), 't.png');
  assert.deepEqual([d.c, d.h, d.w], [3, 10, 9]);
  for (let y = 0; y < 10; y++) {
    for (let x = 0; x < 9; x++) {
      const [r, g, b] = f(x, y);
      assert.equal(d.data[y * 9 + x], r);
      assert.equal(d.data[90 + y * 9 + x], g);
      assert.equal(d.data[180 + y * 9 + x], b);
    }
  }
  const grey = decodeImage(png(2, 1, () => [255, 0, 0]), 'g.png', { channels: 1 });
  assert.equal(grey.data[0], 76); // round(0.299 * 255)
  assert.throws(() => decodeImage(Buffer.from('GIF89a'), 'x.gif'), /cannot decode x\.gif: not a JPEG or PNG/);
  assert.throws(() => decodeImage(png(4, 4, f), 'p.png', { expect: { h: 8, w: 8 } }), /image p\.png is 4x4, expected 8x8/);
});

function makeTiny(opts: { badSize?: boolean; badWnid?: boolean } = {}): string {
  const dir = path.join(fresh(), 'tiny-imagenet-200');
  const wnids = ['n02000002', 'n01000001', 'n03000003']; // unsorted on purpose
  write(path.join(dir, 'wnids.txt'), wnids.join('\n') + '\n');
  write(path.join(dir, 'words.txt'), 'n01000001\tgoldfish, Carassius auratus\nn02000002\tdog\nn03000003\tcar, auto\nn09999999\tunused\n');
  const sorted = [...wnids].sort();
  sorted.forEach((id, k) => {
    for (let i = 0; i < 3; i++) {
      const size = opts.badSize && k === 1 && i === 2 ? 32 : 64;
      write(path.join(dir, 'train', id, 'images', `${id}_${i}.JPEG`), solidJpeg(size, size, colour(k)));
    }
    write(path.join(dir, 'train', id, `${id}_boxes.txt`), 'ignored');
  });
  const ann: string[] = [];
  for (let i = 0; i < 4; i++) {
    const k = (i + 1) % 3;
    write(path.join(dir, 'val', 'images', `val_${i}.JPEG`), solidJpeg(64, 64, colour(k)));
    ann.push(`val_${i}.JPEG\t${opts.badWnid && i === 3 ? 'n04444444' : sorted[k]}\t0\t0\t10\t10`);
  }
  write(path.join(dir, 'val', 'val_annotations.txt'), ann.join('\n') + '\n');
  return dir;
}

test('Tiny ImageNet layout: sorted wnids, words.txt names, val annotations as test, cache', async () => {
  const dir = makeTiny();
  const cacheDir = fresh();
  const r = await loadTinyImageNetSource({ root: path.dirname(dir), cacheDir, silent: true });
  assert.equal(r.fromCache, false);
  assert.deepEqual([r.train.n, r.train.c, r.train.h, r.train.w], [9, 3, 64, 64]);
  assert.deepEqual(r.train.classNames, ['goldfish', 'dog', 'car']);
  assert.deepEqual(classCounts(r.train), [3, 3, 3]);
  assert.equal(r.test.n, 4);
  const plane = 64 * 64;
  for (let i = 0; i < r.train.n; i++) {
    const k = r.train.labels[i];
    const [R, G, B] = colour(k);
    const o = i * 3 * plane + 1000;
    assert.ok(near(r.train.images[o], R) && near(r.train.images[o + plane], G) && near(r.train.images[o + 2 * plane], B), `train ${i}`);
  }
  assert.deepEqual([...r.test.labels], [1, 2, 0, 1]);
  assert.ok(near(r.test.images[7], colour(1)[0]));
  const again = await loadTinyImageNetSource({ root: dir, cacheDir, silent: true });
  assert.equal(again.fromCache, true);
  assert.deepEqual([...again.test.labels], [1, 2, 0, 1]);

  const d = await loadDataset('tiny-imagenet', { root: dir, cache: false, valSize: 3, silent: true });
  assert.deepEqual(classCounts(d.val!), [1, 1, 1]);
  assert.deepEqual(d.augment, { cropPadding: 8, flip: true, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } });
});

test('Tiny ImageNet errors: wrong image size, unknown wnid, missing folder; nothing cached', async () => {
  const cacheDir = fresh();
  await assert.rejects(
    loadTinyImageNetSource({ root: makeTiny({ badSize: true }), cacheDir, silent: true }),
    /n02000002_2\.JPEG is 32x32, expected 64x64/,
  );
  await assert.rejects(
    loadTinyImageNetSource({ root: makeTiny({ badWnid: true }), cacheDir, silent: true }),
    /val_annotations\.txt line 4: unknown wnid 'n04444444'/,
  );
  assert.deepEqual(fs.readdirSync(cacheDir), []);
  await assert.rejects(loadTinyImageNetSource({ root: fresh(), cacheDir: false }), /has no wnids\.txt/);
});

function makeFolder(opts: { odd?: boolean } = {}): string {
  const dir = fresh();
  const classes = ['dog', 'cat', 'bird'];
  for (const split of ['train', 'test']) {
    classes.forEach((c) => {
      const k = ['bird', 'cat', 'dog'].indexOf(c);
      const n = split === 'train' ? 4 : 2;
      for (let i = 0; i < n; i++) {
        const size = opts.odd && split === 'test' && c === 'cat' ? 12 : 16;
        const f = path.join(dir, split, c, i === 1 ? 'sub' : '', `${c}${i}.${i === 0 ? 'png' : 'jpg'}`);
        write(f, i === 0 ? png(size, size, () => colour(k)) : solidJpeg(size, size, colour(k)));
      }
      write(path.join(dir, split, c, 'notes.txt'), 'not an image');
    });
  }
  return dir;
}

test('ImageFolder: sorted classes, recursive files, png+jpeg, fixed class map for test', async () => {
  const dir = makeFolder();
  const tr = readImageFolder({ root: path.join(dir, 'train'), silent: true });
  assert.deepEqual(tr.classNames, ['bird', 'cat', 'dog']);
  assert.deepEqual([tr.n, tr.c, tr.h, tr.w], [12, 3, 16, 16]);
  assert.deepEqual(classCounts(tr), [4, 4, 4]);
  for (let i = 0; i < tr.n; i++) assert.ok(near(tr.images[i * 768 + 20], colour(tr.labels[i])[0]), `image ${i}`);
  const grey = readImageFolder({ root: path.join(dir, 'train'), channels: 1, size: 16, silent: true });
  assert.equal(grey.c, 1);
  assert.throws(() => readImageFolder({ root: path.join(dir, 'train'), size: 32, silent: true }), /is 16x16, expected 32x32/);

  const d = await loadDataset('imagefolder', { root: dir, valSize: 3, silent: true });
  assert.equal(d.train.n, 9);
  assert.equal(d.val!.n, 3);
  assert.equal(d.test.n, 6);
  assert.deepEqual(d.test.classNames, ['bird', 'cat', 'dog']);
  assert.deepEqual(d.augment, { cropPadding: 2, flip: true });

  await assert.rejects(loadDataset('imagefolder', { root: makeFolder({ odd: true }), silent: true }), /cat0\.png is 12x12, expected 16x16/);
  const extra = makeFolder();
  write(path.join(extra, 'test', 'horse', 'h.jpg'), solidJpeg(16, 16, [1, 2, 3]));
  await assert.rejects(loadDataset('imagefolder', { root: extra, silent: true }), /horse is not one of the known classes/);
});
