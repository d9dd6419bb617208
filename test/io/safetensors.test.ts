// safetensors: round trips, the exact byte layout, atomic writes and corrupt files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensor, randn, manualSeed, liveTensors, Tensor, type DType } from '../../src/tensor';
import * as nn from '../../src/nn';
import { encodeSafetensors, decodeSafetensors, saveSafetensors, loadSafetensors, SafetensorsError } from '../../src/io';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-st-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const rawBytes = (t: Tensor): Buffer => {
  const d = t.data();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
};
const headerOf = (buf: Buffer): { n: number; json: Record<string, any> } => {
  const n = Number(buf.readBigUInt64LE(0));
  return { n, json: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
};

test('round trip of every dtype, odd shapes and metadata', (t) => {
  const dir = tmpDir(t);
  const src = new Map<string, Tensor>([
    ['f32', tensor(new Float32Array([1.5, -0, NaN, Infinity, -3.4e38, 1e-45]), [2, 3])],
    ['f64', tensor(new Float64Array([Math.PI, -Number.MAX_VALUE, Number.MIN_VALUE]), [3], 'float64')],
    ['i64', tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 9007199254740993n, 0n]), [2, 2])],
    ['i32', tensor(new Int32Array([-2147483648, 2147483647, 7]), [3, 1])],
    ['u8', tensor(new Uint8Array([0, 255, 128]), [1, 3])],
    ['flag', tensor(new Uint8Array([1, 0, 1, 1]), [4], 'bool')],
    ['scalar', tensor([2.5], [], 'float64')],
    ['empty', tensor(new Float32Array(0), [0, 5])],
    ['model.layer.0.weight', randn([2, 3, 1, 1]).contiguous('channels_last')],
    ['transposed', tensor([[1, 2, 3], [4, 5, 6]]).transpose(0, 1)],
  ]);
  const metadata = { format: 'pt', epoch: '12', note: 'ünïcödé ✓' };
  const file = path.join(dir, 'all.safetensors');
  saveSafetensors(file, src, metadata);
  const before = liveTensors();
  const { tensors, metadata: meta } = loadSafetensors(file);
  assert.equal(liveTensors(), before + src.size, 'one new tensor per entry');
  assert.deepEqual(meta, metadata);
  assert.deepEqual([...tensors.keys()].sort(), [...src.keys()].sort());
  for (const [name, want] of src) {
    const got = tensors.get(name)!;
    assert.equal(got.dtype, want.dtype, `${name} dtype`);
    assert.deepEqual(got.shape, want.shape, `${name} shape`);
    assert.ok(rawBytes(got).equals(rawBytes(want)), `${name} bytes`);
  }
  // The transposed tensor was written in logical (row-major) order.
  assert.deepEqual(tensors.get('transposed')!.toNumbers(), [1, 4, 2, 5, 3, 6]);
  // Without metadata the header has no __metadata__ entry.
  const bare = encodeSafetensors(new Map([['x', tensor([1])]]));
  assert.equal('__metadata__' in headerOf(bare).json, false);
  assert.deepEqual(decodeSafetensors(bare).metadata, {});
});

test('header: length a multiple of 8, data offsets contiguous and in name order', () => {
  for (let len = 1; len <= 16; len++) {
    const metas: Record<string, string>[] = [{}, { k: 'v'.repeat(len) }, { k: 'é'.repeat(len) }, { k: '✓'.repeat(len) }];
    for (const meta of metas) {
      const tensors = new Map([
        ['n'.repeat(len), tensor([1, 2, 3])],
        ['a', tensor([1], undefined, 'uint8')],
        ['z', tensor([1, 2], undefined, 'float64')],
      ]);
      const buf = encodeSafetensors(tensors, meta);
      const { n, json } = headerOf(buf);
      assert.equal(n % 8, 0, `header length ${n} for name length ${len}, metadata ${JSON.stringify(meta)}`);
      assert.equal(buf.length, 8 + n + 12 + 1 + 16);
      // Padding is spaces only.
      assert.match(buf.subarray(8, 8 + n).toString('utf8'), /^\{.*\} *$/);
      const entries = Object.entries(json).filter(([k]) => k !== '__metadata__') as [string, { data_offsets: [number, number] }][];
      const names = entries.map(([k]) => k);
      assert.deepEqual(names, [...names].sort());
      let offset = 0;
      for (const [, info] of entries) {
        assert.equal(info.data_offsets[0], offset);
        offset = info.data_offsets[1];
      }
      assert.equal(offset, buf.length - 8 - n, 'the data section is exactly covered');
      assert.deepEqual(decodeSafetensors(buf).metadata, meta);
    }
  }
});

test('byte-level layout of a tiny file', (t) => {
  // {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes; two
  // spaces pad it to 56 = 0x38. Then 1.0f = 00 00 80 3f and -2.0f = 00 00 00 c0.
  const expected = Buffer.concat([
    Buffer.from([0x38, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ', 'ascii'),
    Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]),
  ]);
  assert.equal(expected.length, 72);
  const tensors = new Map([['a', tensor([1, -2])]]);
  assert.ok(encodeSafetensors(tensors).equals(expected), encodeSafetensors(tensors).toString('hex'));
  const file = path.join(tmpDir(t), 'tiny.safetensors');
  saveSafetensors(file, tensors);
  assert.ok(fs.readFileSync(file).equals(expected));

  // A second file, with metadata, an int64 scalar and a bool vector:
  // Its header is 29 bytes up to the metadata's comma, 54 for "b" with its
  // comma and 53 for "c" with the closing braces: 136 = 0x88, already a
  // multiple of 8, so no padding. Names are sorted, so "b" comes first.
  const json2 = '{"__metadata__":{"step":"7"},"b":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},"c":{"dtype":"I64","shape":[],"data_offsets":[3,11]}}';
  assert.equal(json2.length, 136);
  const expected2 = Buffer.concat([
    Buffer.from([0x88, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from(json2, 'ascii'),
    Buffer.from([1, 0, 1]),
    Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // -2 as little-endian int64
  ]);
  const enc2 = encodeSafetensors(new Map([['c', tensor([-2], [], 'int64')], ['b', tensor([true, false, true], undefined, 'bool')]]), { step: '7' });
  assert.ok(enc2.equals(expected2), enc2.toString('hex'));

  // Files from other writers decode too: other key order, whitespace, no padding.
  const foreignJson = '{ "w": {"data_offsets": [0, 4], "shape": [1, 1], "dtype": "I32"}, "__metadata__": {"a": "b"} }';
  const foreign = Buffer.concat([Buffer.alloc(8), Buffer.from(foreignJson), Buffer.from([0x2a, 0, 0, 0])]);
  foreign.writeBigUInt64LE(BigInt(foreignJson.length));
  const dec = decodeSafetensors(foreign);
  assert.deepEqual(dec.metadata, { a: 'b' });
  assert.equal(dec.tensors.get('w')!.dtype, 'int32');
  assert.deepEqual(dec.tensors.get('w')!.shape, [1, 1]);
  assert.equal(dec.tensors.get('w')!.item(), 42);
});

test('atomic writes: no temporary left, an existing file replaced whole', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'ckpt.safetensors');
  saveSafetensors(file, new Map([['w', tensor([1, 2, 3])]]));
  assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']);
  const oldBytes = fs.readFileSync(file);
  const oldIno = fs.statSync(file).ino;
  // A reader holding the old file open keeps seeing the complete old file.
  const fd = fs.openSync(file, 'r');
  try {
    saveSafetensors(file, new Map([['w', randn([64, 64])]]), { v: '2' });
    const reread = Buffer.alloc(oldBytes.length + 100);
    const n = fs.readSync(fd, reread, 0, reread.length, 0);
    assert.ok(reread.subarray(0, n).equals(oldBytes), 'the old inode was not written into');
  } finally {
    fs.closeSync(fd);
  }
  assert.notEqual(fs.statSync(file).ino, oldIno, 'replaced by rename, not rewritten in place');
  assert.deepEqual(loadSafetensors(file).tensors.get('w')!.shape, [64, 64]);
  assert.deepEqual(loadSafetensors(file).metadata, { v: '2' });
  assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']);

  // A failing save (a disposed tensor) leaves the old file and no temporary.
  const gone = tensor([1]);
  gone.dispose();
  const current = fs.readFileSync(file);
  assert.throws(() => saveSafetensors(file, new Map([['w', gone]])), /disposed/);
  assert.ok(fs.readFileSync(file).equals(current));
  // A failing rename (the target is a directory) cleans up its temporary.
  const blocked = path.join(dir, 'blocked.safetensors');
  fs.mkdirSync(blocked);
  assert.throws(() => saveSafetensors(blocked, new Map([['w', tensor([1])]])));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['blocked.safetensors', 'ckpt.safetensors']);
  assert.deepEqual(fs.readdirSync(blocked), []);
  // Missing parent directories are created.
  const nested = path.join(dir, 'a', 'b', 'c.safetensors');
  saveSafetensors(nested, new Map([['w', tensor([5])]]));
  assert.equal(loadSafetensors(nested).tensors.get('w')!.item(), 5);
});

test('corrupt files: truncation, bad JSON, wrong byte ranges, unknown dtypes', (t) => {
  const dir = tmpDir(t);
  const good = encodeSafetensors(new Map([['a', tensor([1, 2, 3, 4])], ['b', tensor([7], undefined, 'int64')]]));
  const { n, json } = headerOf(good);
  const withHeader = (h: unknown, body: Buffer = good.subarray(8 + n)): Buffer => {
    const s = JSON.stringify(h);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(s)));
    return Buffer.concat([head, Buffer.from(s), body]);
  };
  const expectBad = (name: string, bytes: Buffer, re: RegExp): void => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    let err: unknown;
    try {
      loadSafetensors(f);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SafetensorsError, `${name}: got ${err}`);
    assert.equal(err.name, 'SafetensorsError');
    assert.ok(err.message.startsWith(`safetensors ${f}: `), err.message);
    assert.match(err.message, re, name);
  };
  const before = liveTensors();
  expectBad('empty', Buffer.alloc(0), /too short \(0 bytes\)/);
  expectBad('seven', good.subarray(0, 7), /too short \(7 bytes\)/);
  expectBad('cut-in-header', good.subarray(0, 8 + n - 1), new RegExp(`header length ${n} runs past the end of the file \\(${8 + n - 1} bytes\\)`));
  expectBad('cut-in-data', good.subarray(0, good.length - 1), /tensor b: byte range \[16, 24\) does not hold shape \[1\] of int64/);
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(2n ** 62n);
  expectBad('huge-length', huge, /runs past the end/);
  const badJson = Buffer.from(good);
  badJson.write('!', 9);
  expectBad('bad-json', badJson, /header is not JSON/);
  expectBad('short-range', withHeader({ ...json, a: { ...json.a, data_offsets: [0, 12] } }), /tensor a: byte range \[0, 12\) does not hold shape \[4\] of float32/);
  expectBad('past-end', withHeader({ ...json, b: { ...json.b, data_offsets: [20, 28] } }), /tensor b: byte range \[20, 28\)/);
  expectBad('negative', withHeader({ ...json, a: { ...json.a, data_offsets: [-4, 12] } }), /tensor a: byte range \[-4, 12\)/);
  expectBad('fractional', withHeader({ ...json, a: { ...json.a, data_offsets: [0.5, 16.5] } }), /tensor a: byte range \[0.5, 16.5\)/);
  expectBad('wrong-shape', withHeader({ ...json, a: { ...json.a, shape: [5] } }), /tensor a: byte range \[0, 16\) does not hold shape \[5\] of float32/);
  expectBad('f16', withHeader({ ...json, a: { ...json.a, dtype: 'F16' } }), /tensor a: unsupported dtype F16/);
  expectBad('negative-shape', withHeader({ ...json, a: { ...json.a, shape: [-2, -2] } }), /tensor a: malformed entry/);
  expectBad('no-offsets', withHeader({ ...json, b: { dtype: 'I64', shape: [1] } }), /tensor b: malformed entry/);
  expectBad('not-an-entry', withHeader({ ...json, b: 5 }), /tensor b: malformed entry 5/);
  expectBad('array-header', withHeader([1, 2]), /header is not a JSON object/);
  expectBad('null-header', withHeader(null), /header is not a JSON object/);
  assert.equal(liveTensors(), before, 'a failed load leaves no tensors behind');
  // The intact file still loads.
  const ok = decodeSafetensors(good);
  assert.deepEqual(ok.tensors.get('a')!.toNumbers(), [1, 2, 3, 4]);
  assert.deepEqual(ok.tensors.get('b')!.toNumbers(), [7]);
});

test('a Module state dict saved and loaded into a fresh module', (t) => {
  const make = (): nn.Sequential =>
    new nn.Sequential(
      new nn.Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1 }),
      new nn.BatchNorm2d({ numFeatures: 3 }),
      new nn.ReLU(),
      new nn.Flatten(),
      new nn.Linear({ inFeatures: 3 * 4 * 4, outFeatures: 2 }),
    );
  manualSeed(1);
  const a = make();
  const x = randn([5, 2, 4, 4]);
  a.forward(x); // training mode: moves the running statistics
  a.forward(x.mul(2));
  a.eval();
  const want = a.forward(x).toNumbers();
  const file = path.join(tmpDir(t), 'model.safetensors');
  saveSafetensors(file, a.stateDict(), { arch: 'tiny' });

  manualSeed(2);
  const b = make().eval();
  assert.notDeepEqual(b.forward(x).toNumbers(), want);
  const { tensors, metadata } = loadSafetensors(file);
  assert.equal(metadata.arch, 'tiny');
  assert.equal(tensors.get('1.num_batches_tracked')!.dtype, 'int64');
  assert.equal(tensors.get('1.num_batches_tracked')!.item(), 2);
  b.loadStateDict(tensors);
  assert.deepEqual(b.forward(x).toNumbers(), want);
  assert.deepEqual(
    [...b.stateDict()].map(([k, v]) => [k, v.dtype, v.shape, v.toNumbers()]),
    [...a.stateDict()].map(([k, v]) => [k, v.dtype, v.shape, v.toNumbers()]),
  );
  // Loaded tensors are plain (no grad); the module's parameters stay trainable.
  assert.ok([...tensors.values()].every((v) => !v.requiresGrad));
  assert.ok(b.parameters().every((p) => p.requiresGrad));
});
