// The cost model: published totals, hand counts of single layers by the
// reference profiler's convention (src/nn/profiler.ts), cumulative taps, and
// the `ztw flops` command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { backboneCost, createBackbone, moduleCost } from '../../src/models';
import { AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../../src/nn/layers';
import { zeros } from '../../src/tensor/create';
import { setNumThreads } from '../../src/tensor/native';

// Small tensors on a shared 2-core machine: one intra-op thread avoids OpenMP contention.
setNumThreads(1);

const ROOT = path.join(__dirname, '..', '..', '..');

test('ResNet-56 on 32x32: 125.75 M multiply-adds (published ~125 M), exactly the hand count', () => {
  const m = createBackbone('resnet56');
  const r = backboneCost(m);
  // Hand count of convolutions and the classifier, one 3x32x32 input:
  const conv = (cin: number, cout: number, k: number, s: number): number => cin * cout * k * k * s * s;
  const handMacs =
    conv(3, 16, 3, 32) + // stem
    18 * conv(16, 16, 3, 32) + // stage 1: 9 blocks x 2 convs
    conv(16, 32, 3, 16) + 17 * conv(32, 32, 3, 16) + conv(16, 32, 1, 16) + // stage 2 (+ 1x1 shortcut)
    conv(32, 64, 3, 8) + 17 * conv(64, 64, 3, 8) + conv(32, 64, 1, 8) + // stage 3
    64 * 10; // fc
  assert.equal(handMacs, 125_747_840);
  assert.equal(r.macs, handMacs);
  assert.ok(Math.abs(r.macs - 125e6) / 125e6 < 0.01, 'within 1% of the published figure');
  assert.equal(r.taps.length, 27);
  // Cumulative: strictly increasing, the last tap below the total (the pool and fc come after).
  for (let i = 1; i < r.taps.length; i++) {
    assert.ok(r.taps[i].macs > r.taps[i - 1].macs, `tap ${i} macs increase`);
    assert.ok(r.taps[i].flops > r.taps[i - 1].flops, `tap ${i} flops increase`);
  }
  const last = r.taps[r.taps.length - 1];
  assert.ok(last.macs < r.macs && last.flops < r.flops);
  assert.equal(r.macs - last.macs, 640, 'after the last tap only the fc has multiply-adds');
  // The first tap: stem + block 1 (two convs) = 442,368 + 2 * 2,359,296.
  assert.equal(r.taps[0].macs, conv(3, 16, 3, 32) + 2 * conv(16, 16, 3, 32));
  assert.equal(r.taps[0].name, 'layer1.0');
  assert.ok(r.flops > 1.95 * r.macs && r.flops < 2.05 * r.macs, `FLOPs ~ 2x MACs, got ${r.flops}`);
  // Per-layer records carry the module names.
  assert.ok(r.layers.some((l) => l.name === 'layer2.0.shortcut.0' && l.op === 'conv2d'));
  assert.equal(r.layers.reduce((s, l) => s + l.macs, 0), r.macs);
  m.dispose();
});

test('ResNet-50 on 224x224: ~4.09 G multiply-adds (published ~4.1 G), 16 taps', () => {
  const m = createBackbone('resnet50');
  const r = backboneCost(m);
  assert.ok(Math.abs(r.macs - 4.09e9) / 4.09e9 < 0.005, `got ${r.macs}`);
  assert.equal(r.taps.length, 16);
  assert.ok(r.taps[15].macs < r.macs);
  assert.equal(r.macs - r.taps[15].macs, 2048 * 1000);
  m.dispose();
});

test('hand counts of single layers (MACs, FLOPs)', () => {
  const x = (c: number, s = 8) => () => [zeros([1, c, s, s])];
  // Conv 3->8, 3x3, padding 1 on 8x8: 8*8*8 = 512 outputs, 27 multiply-adds each.
  const noBias = moduleCost(new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, bias: false }), x(3));
  assert.deepEqual([noBias.macs, noBias.flops], [512 * 27, 512 * (2 * 27 - 1)]);
  const withBias = moduleCost(new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 }), x(3));
  assert.deepEqual([withBias.macs, withBias.flops], [13_824, 512 * 54]);
  // No padding: 6x6 outputs.
  const valid = moduleCost(new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3 }), x(3));
  assert.deepEqual([valid.macs, valid.flops], [8 * 36 * 27, 8 * 36 * 54]);
  // Stride 2: 4x4 outputs.
  const strided = moduleCost(new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1, stride: 2, bias: false }), x(3));
  assert.equal(strided.macs, 8 * 16 * 27);
  // Grouped conv 8->8, 2 groups: 4 input channels per output.
  const grouped = moduleCost(new Conv2d({ inChannels: 8, outChannels: 8, kernelSize: 3, padding: 1, groups: 2 }), x(8));
  assert.deepEqual([grouped.macs, grouped.flops], [512 * 36, 512 * 72]);
  // Depthwise 8->8, 8 groups: 9 per output (not the reference's over-count of 72).
  const dw = moduleCost(new Conv2d({ inChannels: 8, outChannels: 8, kernelSize: 3, padding: 1, groups: 8, bias: false }), x(8));
  assert.deepEqual([dw.macs, dw.flops], [512 * 9, 512 * 17]);
  // Linear 64 -> 10: (2*64 - 1) * 10 FLOPs (bias not counted, as the reference).
  const lin = moduleCost(new Linear({ inFeatures: 64, outFeatures: 10 }), () => [zeros([1, 64])]);
  assert.deepEqual([lin.macs, lin.flops], [640, 1270]);
  // Pools on 8x8x8 with a 2x2 window: 128 outputs; max k*k-1 = 3, avg k*k = 4.
  const mp = moduleCost(new MaxPool2d({ kernelSize: 2 }), x(8));
  assert.deepEqual([mp.macs, mp.flops], [0, 128 * 3]);
  const ap = moduleCost(new AvgPool2d({ kernelSize: 2 }), x(8));
  assert.deepEqual([ap.macs, ap.flops], [0, 128 * 4]);
  const mp3 = moduleCost(new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }), x(8));
  assert.equal(mp3.flops, 8 * 4 * 4 * 8);
  // BN 2 per element, ReLU 1 per element (in eval mode BN is not fused when profiling).
  const bn = new BatchNorm2d({ numFeatures: 8 }).eval();
  assert.deepEqual(moduleCost(bn, x(8)).flops, 1024);
  assert.deepEqual(moduleCost(new ReLU(), x(8)).flops, 512);
  // A sequence adds up, and the layers are named by their path.
  const seq = new Sequential(new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 }), new ReLU(), new MaxPool2d({ kernelSize: 2 }));
  const c = moduleCost(seq, x(3));
  assert.deepEqual([c.macs, c.flops], [13_824, 512 * 54 + 512 + 384]);
  assert.deepEqual(c.layers.map((l) => [l.name, l.op]), [['0', 'conv2d'], ['1', 'relu'], ['2', 'maxPool2d']]);
});

test('conv-BN fusion stays out of the cost model: BN counted even in eval mode', () => {
  const m = createBackbone('resnet20').eval();
  const r = backboneCost(m);
  assert.ok(r.layers.some((l) => l.op === 'batchNorm'));
  assert.equal(r.layers.filter((l) => l.op === 'batchNorm').length, r.layers.filter((l) => l.op === 'conv2d').length);
  assert.equal(m.training, false, 'backboneCost restores the mode');
  m.train();
  backboneCost(m);
  assert.equal(m.training, true, 'backboneCost restores training mode');
  m.dispose();
});

test('`ztw flops --arch resnet56 --json` prints one JSON document with the MACs and 27 taps', () => {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'ztw.js'), 'flops', '--arch', 'resnet56', '--json'], { encoding: 'utf8', env: { ...process.env, ZTW_QUIET: '1', ZTW_THREADS: '1' } });
  const doc = JSON.parse(out); // throws unless stdout is exactly one JSON document
  assert.equal(doc.arch, 'resnet56');
  assert.equal(doc.macs, 125_747_840);
  assert.equal(doc.taps.length, 27);
  assert.equal(doc.tapNames.length, 27);
  assert.deepEqual(doc.input, [3, 32, 32]);
  assert.ok(doc.taps.every((t: number, i: number) => i === 0 || t > doc.taps[i - 1]));
  assert.ok(doc.taps[26] < doc.macs);
  assert.ok(doc.flops > doc.macs);
  assert.ok(doc.params > 850_000 && doc.params < 870_000, `ResNet-56 has ~0.86 M parameters, got ${doc.params}`);
  // A grey input: only the stem's multiply-adds change (3 -> 1 input channels).
  const grey = createBackbone('resnet56', { inChannels: 1 });
  assert.equal(doc.macs - backboneCost(grey).macs, 2 * 16 * 9 * 1024);
  grey.dispose();
});
