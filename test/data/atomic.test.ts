import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicDir, cleanStaleTemporaries, withAtomicFile, writeFileAtomic } from '../../src/util/atomic';

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmpDir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-atomic-'));
  made.push(d);
  return d;
};

test('writeFileAtomic writes chunks in order, replaces, and leaves no temporaries', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'sub', 'a.bin');
  writeFileAtomic(f, ['ab', new Uint8Array([99, 100])]);
  assert.equal(fs.readFileSync(f, 'latin1'), 'abcd');
  writeFileAtomic(f, 'new');
  assert.equal(fs.readFileSync(f, 'utf8'), 'new');
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['a.bin']);
});

test('writeFileAtomic failure keeps the old file and removes the temporary', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'a.txt');
  fs.writeFileSync(f, 'old');
  // A non-buffer chunk makes the write throw midway.
  assert.throws(() => writeFileAtomic(f, ['x', 42 as unknown as string]));
  assert.equal(fs.readFileSync(f, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['a.txt']);
});

test('withAtomicFile: success renames, failure leaves nothing', async () => {
  const dir = tmpDir();
  const f = path.join(dir, 'out.dat');
  await withAtomicFile(f, async (tmp) => fs.writeFileSync(tmp, 'ok'));
  assert.equal(fs.readFileSync(f, 'utf8'), 'ok');
  const g = path.join(dir, 'bad.dat');
  await assert.rejects(
    withAtomicFile(g, async (tmp) => {
      fs.writeFileSync(tmp, 'partial');
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(fs.readdirSync(dir), ['out.dat']);
});

test('atomicDir builds a directory in one step; a failure leaves nothing', async () => {
  const dir = tmpDir();
  const target = path.join(dir, 'built');
  await atomicDir(target, (t) => fs.writeFileSync(path.join(t, 'x'), '1'));
  assert.equal(fs.readFileSync(path.join(target, 'x'), 'utf8'), '1');
  await assert.rejects(atomicDir(target, () => undefined), /already exists/);
  await assert.rejects(
    atomicDir(path.join(dir, 'other'), () => {
      throw new Error('fail');
    }),
    /fail/,
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['built']);
});

test('cleanStaleTemporaries removes only old temporaries', () => {
  const dir = tmpDir();
  const stale = path.join(dir, '.x.bin.tmp-123-deadbeef');
  fs.writeFileSync(stale, '');
  fs.writeFileSync(path.join(dir, 'keep.bin'), '');
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  fs.utimesSync(stale, old, old);
  assert.equal(cleanStaleTemporaries(dir), 1);
  assert.deepEqual(fs.readdirSync(dir), ['keep.bin']);
});
