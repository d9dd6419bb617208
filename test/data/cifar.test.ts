import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as tar from 'tar-stream';
import { loadCifarSource, parseCifarRecords, CIFAR10_CLASSES } from '../../src/data/cifar';
import { loadDataset } from '../../src/data/registry';

// Small archives in the official layouts, built here: record i has label i % K and pixels
// (i * 31 + j) & 255, so every byte of the result can be checked.
const pix = (i: number, j: number): number => (i * 31 + j) & 255;

function records(n: number, opts: { labelBytes: 1 | 2; K: number; first?: number; badLabelAt?: number }): Buffer {
  const rec = opts.labelBytes + 3072;
  const buf = Buffer.alloc(n * rec);
  for (let r = 0; r < n; r++) {
    const i = (opts.first ?? 0) + r;
    const o = r * rec;
    if (opts.labelBytes === 2) buf[o] = i % 20; // coarse
    buf[o + opts.labelBytes - 1] = r === opts.badLabelAt ? opts.K : i % opts.K;
    for (let j = 0; j < 3072; j++) buf[o + opts.labelBytes + j] = pix(i, j);
  }
  return buf;
}

async function tarGz(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, size: e.data.length }, e.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return zlib.gzipSync(Buffer.concat(chunks));
}

const PER_BATCH = 6; // 5 train batches -> 30 train images, test 4
function cifar10Entries(opts: { badLabelAt?: number; truncateTest?: boolean } = {}): { name: string; data: Buffer }[] {
  const e = [1, 2, 3, 4, 5].map((b) => ({
    name: `cifar-10-batches-bin/data_batch_${b}.bin`,
    data: records(PER_BATCH, { labelBytes: 1, K: 10, first: (b - 1) * PER_BATCH, badLabelAt: b === 3 ? opts.badLabelAt : undefined }),
  }));
  let test = records(4, { labelBytes: 1, K: 10, first: 1000 });
  if (opts.truncateTest) test = test.subarray(0, test.length - 100);
  e.push({ name: 'cifar-10-batches-bin/test_batch.bin', data: test });
  e.push({ name: 'cifar-10-batches-bin/batches.meta.txt', data: Buffer.from(CIFAR10_CLASSES.map((c) => c.toUpperCase()).join('\n') + '\n\n') });
  e.push({ name: 'cifar-10-batches-bin/readme.html', data: Buffer.from('<html/>') });
  return e;
}

function cifar100Entries(): { name: string; data: Buffer }[] {
  const names = Array.from({ length: 100 }, (_, k) => `fine${k}`);
  return [
    { name: 'cifar-100-binary/train.bin', data: records(25, { labelBytes: 2, K: 100 }) },
    { name: 'cifar-100-binary/test.bin', data: records(5, { labelBytes: 2, K: 100, first: 500 }) },
    { name: 'cifar-100-binary/fine_label_names.txt', data: Buffer.from(names.join('\n')) },
    { name: 'cifar-100-binary/coarse_label_names.txt', data: Buffer.from('x\n') },
  ];
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-cifar-'));
let c10: Buffer;
let c100: Buffer;
let server: http.Server;
let base: string;

before(async () => {
  c10 = await tarGz(cifar10Entries());
  c100 = await tarGz(cifar100Entries());
  server = http.createServer((req, res) => {
    const body = req.url === '/c10.tar.gz' ? c10 : req.url === '/c100.tar.gz' ? c100 : undefined;
    if (!body) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  fs.rmSync(root, { recursive: true, force: true });
});

let dirCount = 0;
const fresh = (): string => {
  const d = path.join(root, `d${dirCount++}`);
  fs.mkdirSync(d);
  return d;
};
const quiet = { silent: true, warn: () => {} };

function checkCifar10(train: { n: number; labels: Int32Array; images: Uint8Array; classNames: string[] }, test: { n: number; labels: Int32Array; images: Uint8Array }): void {
  assert.equal(train.n, 5 * PER_BATCH);
  assert.equal(test.n, 4);
  for (let i = 0; i < train.n; i++) assert.equal(train.labels[i], i % 10);
  // Batches concatenate in order 1..5; pixels copy straight through (CHW).
  for (const i of [0, 7, 29]) for (const j of [0, 1023, 1024, 3071]) assert.equal(train.images[i * 3072 + j], pix(i, j));
  assert.equal(test.images[2 * 3072 + 5], pix(1002, 5));
  assert.equal(train.classNames[0], 'AIRPLANE', 'class names come from batches.meta.txt');
}

test('CIFAR-10 from a local .tar.gz and from an extracted directory; cache hit afterwards', async () => {
  const dir = fresh();
  const archive = path.join(dir, 'cifar-10-binary.tar.gz');
  fs.writeFileSync(archive, c10);
  const cache = fresh();
  const a = await loadCifarSource({ variant: 'cifar10', root: archive, cacheDir: cache, ...quiet });
  assert.equal(a.fromCache, false);
  checkCifar10(a.train, a.test);
  const b = await loadCifarSource({ variant: 'cifar10', root: dir, cacheDir: cache, ...quiet });
  assert.equal(b.fromCache, true);
  checkCifar10(b.train, b.test);

  const ex = fresh();
  for (const e of cifar10Entries()) {
    fs.mkdirSync(path.join(ex, path.dirname(e.name)), { recursive: true });
    fs.writeFileSync(path.join(ex, e.name), e.data);
  }
  const c = await loadCifarSource({ variant: 'cifar10', root: ex, cacheDir: false, ...quiet });
  checkCifar10(c.train, c.test);
  const d = await loadCifarSource({ variant: 'cifar10', root: path.join(ex, 'cifar-10-batches-bin'), cacheDir: false, ...quiet });
  checkCifar10(d.train, d.test);
});

test('CIFAR-100 layout: fine labels, names from fine_label_names.txt', async () => {
  const f = path.join(fresh(), 'c100.tgz');
  fs.writeFileSync(f, c100);
  const r = await loadCifarSource({ variant: 'cifar100', root: f, cacheDir: false, ...quiet });
  assert.equal(r.train.n, 25);
  assert.equal(r.test.n, 5);
  assert.equal(r.train.numClasses, 100);
  assert.equal(r.train.classNames[42], 'fine42');
  for (let i = 0; i < 25; i++) assert.equal(r.train.labels[i], i % 100);
  assert.equal(r.test.labels[0], 500 % 100);
  assert.equal(r.train.images[3 * 3072 + 100], pix(3, 100));
});

test('download from a local HTTP server with md5 check, then loadDataset with splits', async () => {
  const cache = fresh();
  const d = await loadDataset('cifar10', { cache, download: true, url: `${base}/c10.tar.gz`, md5: md5(c10), valSize: 10, ...quiet });
  assert.equal(d.fromCache, false);
  assert.ok(fs.existsSync(path.join(cache, 'downloads', 'cifar-10-binary.tar.gz')));
  assert.equal(d.train.n, 20);
  assert.equal(d.val!.n, 10);
  assert.equal(d.test.n, 4);
  assert.deepEqual(d.inputShape, [3, 32, 32]);
  assert.equal(d.norm.mean.length, 3);
  // Second call: converted cache, no network needed (bad URL proves it).
  const again = await loadDataset('cifar10', { cache, download: true, url: `${base}/missing`, md5: md5(c10), valSize: 10, ...quiet });
  assert.equal(again.fromCache, true);
  assert.deepEqual([...again.val!.labels], [...d.val!.labels]);

  const c100cache = fresh();
  const e = await loadCifarSource({ variant: 'cifar100', cacheDir: c100cache, download: true, url: `${base}/c100.tar.gz`, md5: md5(c100), ...quiet });
  assert.equal(e.train.n, 25);
});

test('checksum mismatch: clear error, nothing left in the cache dir', async () => {
  const cache = fresh();
  await assert.rejects(
    loadCifarSource({ variant: 'cifar10', cacheDir: cache, download: true, url: `${base}/c10.tar.gz`, md5: '0'.repeat(32), ...quiet }),
    (e: Error) => /checksum mismatch/.test(e.message) && e.message.includes('/c10.tar.gz') && e.message.includes('0'.repeat(32)),
  );
  const left: string[] = [];
  const walk = (d: string): void => fs.readdirSync(d, { withFileTypes: true }).forEach((x) => (x.isDirectory() ? walk(path.join(d, x.name)) : left.push(x.name)));
  walk(cache);
  assert.deepEqual(left, []);
});

test('missing data without download: error says where to put it', async () => {
  await assert.rejects(loadCifarSource({ variant: 'cifar10', cacheDir: fresh(), ...quiet }), /CIFAR-10: not found.*root.*download/s);
  await assert.rejects(loadCifarSource({ variant: 'cifar10', root: fresh(), cacheDir: false, ...quiet }), /no data under .*missing: data_batch_1\.bin/);
  await assert.rejects(
    loadCifarSource({ variant: 'cifar10', cacheDir: fresh(), download: true, url: `${base}/nothing-here`, ...quiet }),
    /HTTP 404/,
  );
});

test('truncated archive: error names the file; no cache written', async () => {
  const dir = fresh();
  const f = path.join(dir, 'cut.tar.gz');
  fs.writeFileSync(f, c10.subarray(0, Math.floor(c10.length / 2)));
  const cache = fresh();
  await assert.rejects(loadCifarSource({ variant: 'cifar10', root: f, cacheDir: cache, ...quiet }), (e: Error) => e.message.includes(f) && /truncated/.test(e.message));
  assert.deepEqual(fs.readdirSync(cache), []);
});

test('record length not a multiple of the record size, and missing members', async () => {
  const f = path.join(fresh(), 'short.tar.gz');
  fs.writeFileSync(f, await tarGz(cifar10Entries({ truncateTest: true })));
  await assert.rejects(
    loadCifarSource({ variant: 'cifar10', root: f, cacheDir: false, ...quiet }),
    /test_batch\.bin has 12192 bytes, not a multiple of the record size 3073/,
  );
  const g = path.join(fresh(), 'partial.tar.gz');
  fs.writeFileSync(g, await tarGz(cifar10Entries().filter((e) => !e.name.endsWith('data_batch_4.bin'))));
  await assert.rejects(loadCifarSource({ variant: 'cifar10', root: g, cacheDir: false, ...quiet }), /lacks cifar-10-batches-bin\/data_batch_4\.bin/);
});

test('label out of range: error names file and record', async () => {
  const f = path.join(fresh(), 'badlabel.tar.gz');
  fs.writeFileSync(f, await tarGz(cifar10Entries({ badLabelAt: 2 })));
  const cache = fresh();
  await assert.rejects(
    loadCifarSource({ variant: 'cifar10', root: f, cacheDir: cache, ...quiet }),
    /data_batch_3\.bin record 2: label 10 is out of range \[0, 10\)/,
  );
  assert.deepEqual(fs.readdirSync(cache), []);
  const coarse = records(2, { labelBytes: 2, K: 100 });
  coarse[0] = 20;
  assert.throws(() => parseCifarRecords(coarse, { variant: 'cifar100', file: 'x.bin' }), /x\.bin record 0: coarse label 20 is out of range \[0, 20\)/);
  const ok = records(3, { labelBytes: 2, K: 100 });
  ok[3074 + 1] = 100;
  assert.throws(() => parseCifarRecords(ok, { variant: 'cifar100', file: 'y.bin' }), /y\.bin record 1: label 100 is out of range \[0, 100\)/);
});
