// Methods table, the early-exit network (heads per tap, frozen backbone,
// cascade wiring) and the offline collection of exit outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ABLATIONS, DEFAULT_METHODS, HEAD_CASCADE, METHODS, VARIANTS, methodSpec } from '../../src/exits/methods';
import { EarlyExitNetwork, sharedExitLogits } from '../../src/exits/network';
import { collectExitLogProbs, collectSharedExitLogProbs, interleavedHalf, probsPerExit } from '../../src/exits/collect';
import { CifarResNet, createBackbone } from '../../src/models';
import { makeDataset } from '../../src/data/dataset';
import * as F from '../../src/nn/functional';
import { manualSeed, randint, randn, tensor } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import { setNumThreads } from '../../src/tensor/native';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

test('methods table: SDN, PBEE, ZTW and the ablations map to their heads, ensembles and rules', () => {
  const table = Object.fromEntries(Object.entries(METHODS).map(([k, m]) => [k, [m.heads, m.ensemble, m.rule, m.ensembleData ?? 'train']]));
  assert.deepEqual(table, {
    sdn: ['sdn', null, 'confidence', 'train'],
    pbee: ['sdn', null, 'patience', 'train'],
    ztw: ['ztw', 'geometric', 'confidence', 'train'],
    'cascade-only': ['ztw', null, 'confidence', 'train'],
    'ensemble-only': ['sdn', 'geometric', 'confidence', 'train'],
    additive: ['ztw', 'additive', 'confidence', 'train'],
    'mean-ensemble': ['ztw', 'mean', 'confidence', 'train'],
    'no-stop-grad': ['ztw-no-stop-grad', 'geometric', 'confidence', 'train'],
    'ztw-heldout': ['ztw', 'geometric', 'confidence', 'heldout'],
  });
  assert.deepEqual(HEAD_CASCADE.sdn, { enabled: false });
  assert.deepEqual(HEAD_CASCADE.ztw, { enabled: true, detach: true });
  assert.deepEqual(HEAD_CASCADE['ztw-no-stop-grad'], { enabled: true, detach: false });
  assert.deepEqual(DEFAULT_METHODS, ['sdn', 'pbee', 'ztw']);
  for (const m of [...DEFAULT_METHODS, ...ABLATIONS, ...VARIANTS]) assert.equal(methodSpec(m), METHODS[m]);
  assert.throws(() => methodSpec('zwt'), /unknown method 'zwt' \(known: sdn, pbee, ztw/);
});

test('EarlyExitNetwork: one IC per tap plus the backbone exit; the last exit is the backbone', () => {
  manualSeed(1);
  const bb = new CifarResNet({ depth: 8, inChannels: 1 });
  const net = new EarlyExitNetwork(bb, { cascade: HEAD_CASCADE.ztw });
  assert.equal(net.heads.length, 3);
  assert.equal(net.numExits, 4);
  assert.deepEqual(net.heads.map((h) => h.usesPrevious), [false, true, true], 'the first IC has no cascade input');
  assert.deepEqual(net.heads.map((h) => h.fc.weight.shape[1]), [16 * 16, 32 * 16 + 10, 64 * 16 + 10]);
  assert.equal(net.headParameters().length, net.heads.reduce((s, h) => s + h.parameters().length, 0));
  net.freezeBackbone();
  assert.ok(bb.parameters().every((p) => !p.requiresGrad));
  assert.ok(net.headParameters().every((p) => p.requiresGrad));
  net.train();
  assert.equal(bb.training, false, 'the frozen backbone stays in eval mode when the network trains');
  assert.ok(net.heads.every((h) => h.training));
  tidy(() => {
    const x = randn([4, 1, 32, 32]);
    const logits = net.allLogits(x);
    assert.equal(logits.length, 4);
    logits.forEach((l) => assert.deepEqual(l.shape, [4, 10]));
    assertClose(logits[3].toNumbers(), noGrad(() => bb.forward(x)).toNumbers(), { atol: 1e-5, what: 'last exit = backbone' });
    assert.equal(logits[3].requiresGrad, false, 'no gradients into the backbone');
    assert.equal(logits[0].requiresGrad, true, 'the heads record gradients');
    // The ICs' outputs equal the heads applied by hand to the staged features.
    const gen = bb.staged(x);
    const feats = noGrad(() => [gen.next().value, gen.next().value, gen.next().value]);
    const l0 = net.heads[0].forward(feats[0]);
    const l1 = net.heads[1].forward(feats[1], l0);
    assertClose(logits[1].toNumbers(), l1.toNumbers(), { atol: 1e-5, what: 'IC 2 with cascade' });
  });
  // A loss on IC 2 only reaches IC 2 (stop-gradient on the cascade input) and never the backbone.
  tidy(() => {
    const logits = net.allLogits(randn([4, 1, 32, 32]));
    F.crossEntropy(logits[1], randint(0, 10, [4])).backward();
  });
  assert.ok(net.heads[1].parameters().every((p) => p.grad !== undefined));
  assert.ok(net.heads[0].parameters().every((p) => !p.grad || p.grad.abs().sum().item() === 0));
  assert.ok(bb.parameters().every((p) => p.grad === undefined));
  net.dispose();
});

test('EarlyExitNetwork without stop-gradient: a loss on IC 2 reaches IC 1', () => {
  manualSeed(2);
  const net = new EarlyExitNetwork(new CifarResNet({ depth: 8, inChannels: 1 }), { cascade: HEAD_CASCADE['ztw-no-stop-grad'] }).freezeBackbone();
  tidy(() => F.crossEntropy(net.allLogits(randn([4, 1, 32, 32]))[1], randint(0, 10, [4])).backward());
  assert.ok(net.heads[0].fc.weight.grad && net.heads[0].fc.weight.grad.abs().sum().item() > 0);
  net.dispose();
});

test('EarlyExitNetwork: chosen taps, SDN heads, the flat VGG tap, 64x64 strided IC convs; bad taps fail', () => {
  const bb = new CifarResNet({ depth: 8 });
  const some = new EarlyExitNetwork(bb, { taps: [2, 0, 2], cascade: HEAD_CASCADE.sdn });
  assert.deepEqual(some.tapIndices, [0, 2], 'sorted and deduplicated');
  assert.equal(some.numExits, 3);
  assert.ok(some.heads.every((h) => !h.usesPrevious));
  noGrad(() => tidy(() => assert.equal(some.allLogits(randn([2, 3, 32, 32])).length, 3)));
  assert.throws(() => new EarlyExitNetwork(bb, { taps: [3] }), /tap 3 out of range/);
  assert.throws(() => new EarlyExitNetwork(bb, { taps: [-1] }), RangeError);
  const vgg = createBackbone('vgg16bn');
  const vnet = new EarlyExitNetwork(vgg, { cascade: HEAD_CASCADE.ztw });
  assert.equal(vnet.numExits, 15);
  assert.equal(vnet.heads[13].conv, undefined, 'the FC tap gets a linear head');
  assert.deepEqual(vnet.heads[13].fc.weight.shape, [10, 512 + 10]);
  const big = new EarlyExitNetwork(new CifarResNet({ depth: 8, inputSize: 64, numClasses: 200 }));
  // Maps 32 and 16 (> 8) get a stride-2 conv, the 8x8 map does not.
  assert.deepEqual(big.heads.map((h) => h.conv!.options.stride), [2, 2, 1]);
  some.dispose();
  vnet.dispose();
  big.dispose();
});

test('collectExitLogProbs: the log-softmax of every exit over a data set, in order; probsPerExit re-lays them out', () => {
  manualSeed(3);
  const n = 7;
  const images = new Uint8Array(n * 32 * 32);
  for (let i = 0; i < images.length; i++) images[i] = (i * 37 + (i >> 5) * 11) % 256;
  const ds = makeDataset({ name: 'tiny', images, labels: Int32Array.from([0, 1, 2, 3, 4, 5, 6]), n, c: 1, h: 32, w: 32, classNames: [...'abcdefghij'] });
  const norm = { mean: [0.4], std: [0.3] };
  const net = new EarlyExitNetwork(new CifarResNet({ depth: 8, inChannels: 1 }), { cascade: HEAD_CASCADE.ztw });
  const e = collectExitLogProbs(net, ds, norm, { batchSize: 3, silent: true });
  assert.deepEqual([e.numSamples, e.numExits, e.numClasses], [7, 4, 10]);
  assert.deepEqual([...e.labels], [0, 1, 2, 3, 4, 5, 6]);
  // The same computation by hand on normalised pixels.
  const x = tensor(Float32Array.from(images, (v) => (v / 255 - 0.4) / 0.3), [n, 1, 32, 32]);
  const expected = noGrad(() => tidy(() => net.allLogits(x).map((l) => F.logSoftmax(l, 1).toNumbers())));
  for (let i = 0; i < n; i++)
    for (let m = 0; m < 4; m++)
      assertClose(e.logProbs.subarray((i * 4 + m) * 10, (i * 4 + m + 1) * 10), expected[m].slice(i * 10, (i + 1) * 10), { atol: 1e-4, what: `sample ${i} exit ${m}` });
  const probs = probsPerExit(e);
  assert.equal(probs.length, 4);
  for (let m = 0; m < 4; m++) {
    assert.equal(probs[m].length, n * 10);
    for (let i = 0; i < n; i++) {
      const row = probs[m].subarray(i * 10, (i + 1) * 10);
      assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-5);
      assertClose(row, expected[m].slice(i * 10, (i + 1) * 10).map(Math.exp), { atol: 1e-5, what: `probs exit ${m} sample ${i}` });
    }
  }
  // SDN heads on the same backbone, collected together with these in one pass: the same numbers each.
  const sdn = new EarlyExitNetwork(net.backbone, { cascade: HEAD_CASCADE.sdn });
  const alone = collectExitLogProbs(sdn, ds, norm, { batchSize: 3, silent: true });
  const [z, s] = collectSharedExitLogProbs([net, sdn], ds, norm, { batchSize: 3, silent: true });
  assert.deepEqual([...z.logProbs], [...e.logProbs]);
  assert.deepEqual([...s.logProbs], [...alone.logProbs]);
  assert.deepEqual([...s.labels], [...e.labels]);
  assert.throws(() => sharedExitLogits([sdn, new EarlyExitNetwork(new CifarResNet({ depth: 8, inChannels: 1 }))], x), /same backbone and taps/);
  sdn.heads.forEach((h) => h.dispose());
  net.dispose();
});

test('interleavedHalf: two disjoint halves of a cached split, every other sample, with their labels', () => {
  const M = 2;
  const K = 3;
  const N = 5;
  const logProbs = Float32Array.from({ length: N * M * K }, (_, i) => i);
  const e = { numSamples: N, numExits: M, numClasses: K, logProbs, labels: Int32Array.from([0, 0, 1, 1, 2]) };
  const even = interleavedHalf(e, 0);
  const odd = interleavedHalf(e, 1);
  assert.equal(even.numSamples, 3);
  assert.equal(odd.numSamples, 2);
  assert.deepEqual(Array.from(even.labels), [0, 1, 2], 'a class-sorted split gives every class to both halves');
  assert.deepEqual(Array.from(odd.labels), [0, 1]);
  assert.deepEqual(Array.from(odd.logProbs), [...Array.from({ length: 6 }, (_, i) => 6 + i), ...Array.from({ length: 6 }, (_, i) => 18 + i)]);
  assert.equal(even.logProbs.length + odd.logProbs.length, logProbs.length);
});
