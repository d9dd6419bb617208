// The internal classifier: parameter counts by hand, SDN pooling, flat taps,
// and the stop-gradient on the cascade input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ICHead, SDNPool } from '../../src/exits/head';
import * as F from '../../src/nn/functional';
import { manualSeed, randn, randint, tensor } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import { native, setNumThreads } from '../../src/tensor/native';
import { assertClose } from '../helpers/assert';
import { NativeExitBook } from '../../src/runtime/native-book';

setNumThreads(1);

const shapes = (m: ICHead): Record<string, number[]> => Object.fromEntries([...m.namedParameters()].map(([k, t]) => [k, t.shape]));

test('ICHead with cascade: conv C*C*9+C, alpha 1, linear (C*16+K)*K+K', () => {
  for (const [C, S, K] of [[16, 32, 10], [32, 16, 10], [64, 8, 100]]) {
    const h = new ICHead({ tapShape: [C, S, S], numClasses: K, previousClasses: K, cascade: { enabled: true } });
    assert.equal(h.usesPrevious, true);
    assert.deepEqual(shapes(h), { 'conv.weight': [C, C, 3, 3], 'conv.bias': [C], 'pool.alpha': [1], 'fc.weight': [K, C * 16 + K], 'fc.bias': [K] });
    assert.equal(h.numParameters(), C * C * 9 + C + 1 + (C * 16 + K) * K + K);
    noGrad(() =>
      tidy(() => {
        const out = h.forward(randn([3, C, S, S]), randn([3, K]));
        assert.deepEqual(out.shape, [3, K]);
        assert.throws(() => h.forward(randn([3, C, S, S])), /cascade input/);
      }),
    );
    h.dispose();
  }
});

test('ICHead without cascade (SDN), and the first IC of a cascade: linear C*16*K+K', () => {
  const C = 16;
  const K = 10;
  const sdn = new ICHead({ tapShape: [C, 32, 32], numClasses: K, previousClasses: K, cascade: { enabled: false } });
  const first = new ICHead({ tapShape: [C, 32, 32], numClasses: K, previousClasses: 0, cascade: { enabled: true } });
  for (const h of [sdn, first]) {
    assert.equal(h.usesPrevious, false);
    assert.deepEqual(h.fc.weight.shape, [K, C * 16]);
    assert.equal(h.numParameters(), C * C * 9 + C + 1 + C * 16 * K + K);
    noGrad(() => tidy(() => assert.deepEqual(h.forward(randn([2, C, 32, 32])).shape, [2, K])));
  }
  // LayerNorm on the cascade input adds 2K parameters; C/4 conv channels shrink the rest.
  const ln = new ICHead({ tapShape: [C, 8, 8], numClasses: K, previousClasses: K, cascade: { enabled: true, layerNorm: true } });
  assert.equal(ln.numParameters(), C * C * 9 + C + 1 + (C * 16 + K) * K + K + 2 * K);
  const narrow = new ICHead({ tapShape: [C, 8, 8], numClasses: K, channels: C / 4 });
  assert.equal(narrow.numParameters(), C * (C / 4) * 9 + C / 4 + 1 + (C / 4) * 16 * K + K);
  // Stride 2 (64x64 inputs, maps larger than 8): the conv halves a 32x32 map, the pool still gives 4x4.
  const strided = new ICHead({ tapShape: [C, 32, 32], numClasses: K, stride: 2 });
  assert.equal(strided.pool!.size, 16);
  assert.equal(strided.pool!.kernel, 4);
  assert.deepEqual(strided.fc.weight.shape, [K, C * 16]);
  noGrad(() => tidy(() => assert.deepEqual(strided.forward(randn([2, C, 32, 32])).shape, [2, K])));
  for (const h of [sdn, first, ln, narrow, strided]) h.dispose();
});

test('SDNPool: k = floor(S/4), 4x4 outputs on CIFAR maps, no pooling below 4x4', () => {
  const cases: [number, number, number][] = [[32, 8, 4], [16, 4, 4], [8, 2, 4], [4, 1, 4], [6, 1, 6], [7, 1, 7], [2, 1, 2], [1, 1, 1]];
  for (const [S, k, out] of cases) {
    const p = new SDNPool(S);
    assert.equal(p.kernel, k, `S=${S}: kernel`);
    assert.equal(p.outSize, out, `S=${S}: outSize`);
    noGrad(() => tidy(() => assert.deepEqual(p.forward(randn([2, 3, S, S])).shape, [2, 3, out, out], `S=${S}: forward shape`)));
    p.dispose();
  }
  // Below 4x4 the features pass through unchanged.
  const small = new SDNPool(2);
  noGrad(() =>
    tidy(() => {
      const x = randn([1, 2, 2, 2]);
      assert.deepEqual(small.forward(x).toNumbers(), x.toNumbers());
    }),
  );
  // a * maxpool + (1 - a) * avgpool, checked by hand on an 8x8 map (2x2 windows).
  manualSeed(7);
  const p = new SDNPool(8);
  const alpha = p.parameters()[0];
  const a = alpha.item();
  assert.ok(a >= 0 && a < 1, `alpha initialised in [0, 1), got ${a}`);
  const vals = Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 3);
  const got = noGrad(() => tidy(() => p.forward(tensor(vals, [1, 1, 8, 8])).toNumbers()));
  const want: number[] = [];
  for (let r = 0; r < 4; r++)
    for (let c = 0; c < 4; c++) {
      const w = [vals[2 * r * 8 + 2 * c], vals[2 * r * 8 + 2 * c + 1], vals[(2 * r + 1) * 8 + 2 * c], vals[(2 * r + 1) * 8 + 2 * c + 1]];
      const mx = Math.max(...w);
      const av = w.reduce((s, v) => s + v, 0) / 4;
      want.push(a * mx + (1 - a) * av);
    }
  assertClose(got, want, { atol: 1e-5, what: 'SDN pool' });
  // alpha is learnable: it receives a gradient.
  tidy(() => p.forward(tensor(vals, [1, 1, 8, 8])).sum().backward());
  assert.ok(alpha.grad && Math.abs(alpha.grad.item()) > 0);
  p.dispose();
});

test('flat 1-D taps (VGG fc1): no conv or pool, linear (F+K)*K+K with cascade', () => {
  const K = 10;
  const h = new ICHead({ tapShape: [512], numClasses: K, previousClasses: K, cascade: { enabled: true } });
  assert.equal(h.conv, undefined);
  assert.equal(h.pool, undefined);
  assert.deepEqual(shapes(h), { 'fc.weight': [K, 512 + K], 'fc.bias': [K] });
  assert.equal(h.numParameters(), (512 + K) * K + K);
  noGrad(() =>
    tidy(() => {
      const f = randn([4, 512]);
      const prev = randn([4, K]);
      // The head is exactly a linear map of [features, previous logits].
      const expected = F.linear(f.flatten(1).contiguous(), h.fc.weight.narrow(1, 0, 512)).add(F.linear(prev, h.fc.weight.narrow(1, 512, K))).add(h.fc.bias!);
      assertClose(h.forward(f, prev).toNumbers(), expected.toNumbers(), { atol: 1e-5, what: 'flat head' });
    }),
  );
  const solo = new ICHead({ tapShape: [512], numClasses: K });
  assert.equal(solo.numParameters(), 512 * K + K);
  h.dispose();
  solo.dispose();
});

for (const detach of [true, false]) {
  test(`cascade ${detach ? 'with' : 'without'} stop-gradient: a loss on head 2 ${detach ? 'gives head 1 no' : 'reaches head 1\'s'} gradient`, () => {
    manualSeed(8);
    const K = 5;
    const h1 = new ICHead({ tapShape: [8, 8, 8], numClasses: K, cascade: { enabled: true, detach } });
    const h2 = new ICHead({ tapShape: [8, 8, 8], numClasses: K, previousClasses: K, cascade: { enabled: true, detach } });
    tidy(() => {
      const y = randint(0, K, [6]);
      const l1 = h1.forward(randn([6, 8, 8, 8]));
      const l2 = h2.forward(randn([6, 8, 8, 8]), l1);
      F.crossEntropy(l2, y).backward();
    });
    for (const [name, p] of h2.namedParameters()) assert.ok(p.grad && p.grad.abs().sum().item() > 0, `head 2 ${name} has a gradient`);
    for (const [name, p] of h1.namedParameters()) {
      const norm = p.grad ? p.grad.abs().sum().item() : 0;
      if (detach) assert.equal(norm, 0, `head 1 ${name}: no gradient through the stop-gradient`);
      else assert.ok(norm > 0, `head 1 ${name}: gradient flows without the stop-gradient`);
    }
    h1.dispose();
    h2.dispose();
  });
}

test('exitForward: one native call with the numbers of forward() and a log-softmax', () => {
  manualSeed(21);
  // Batches of 3 (larger ones: the last test).
  const K = 7;
  const cases: { tap: number[]; stride?: number; channels?: number; prev: boolean; layout?: 'channels_last' }[] = [
    { tap: [8, 16, 16], prev: true, layout: 'channels_last' },
    { tap: [8, 16, 16], prev: false },
    { tap: [4, 3, 3], prev: true }, // below 4x4: no pooling
    { tap: [5, 10, 10], prev: false }, // k = 2, 5x5 out
    { tap: [3, 7, 7], prev: true, layout: 'channels_last' }, // k = 1
    { tap: [6, 32, 32], stride: 2, prev: true, layout: 'channels_last' },
    { tap: [20], prev: true }, // flat tap: linear only
    // The pooling's and the classifier's vector kernels: sixteen channels a step, then the rest.
    { tap: [16, 32, 32], prev: false, layout: 'channels_last' }, // k = 8
    { tap: [40, 8, 8], prev: true }, // k = 2, two vector steps and 8 channels more
    // The fused convolution + pooling (native/src/head_conv.cc). Odd
    // windows, the direct loop (16 or 32 output channels, 64 up to 8
    // samples): bands of 16, 8, 4, 2 and 1 pixels, input channels of a
    // compiled size (16, 32) or not (48), and wider heads left to oneDNN.
    { tap: [16, 28, 28], prev: false }, // k = 7, an NCHW input, bands of 16, 8 and 4
    { tap: [16, 14, 14], prev: true, layout: 'channels_last' }, // k = 3: columns and rows 12 of 14
    { tap: [16, 7, 7], prev: true, layout: 'channels_last' }, // k = 1, bands of 4, 2 and 1
    { tap: [48, 12, 12], channels: 32, prev: false }, // k = 3, two blocks a band of 8, 48 input channels
    { tap: [64, 7, 7], prev: true, layout: 'channels_last' }, // k = 1, 64 output channels: two passes of two blocks
    // Even windows, Winograd F(2x2, 3x3) (16, 32 or 64 output channels):
    // groups of 16, 8 or 4 tiles and tails of 8, 4 and 1 (with four windows
    // to a row, a row's tiles are a multiple of 4 but for 5 on 10x10 maps),
    // input channels of a compiled size or not.
    { tap: [32, 16, 16], channels: 16, prev: true, layout: 'channels_last' }, // 32 -> 16 channels (the ImageNet heads' C/4): 8 tiles a row
    { tap: [32, 16, 16], prev: true, layout: 'channels_last' }, // 32 channels: a group of 8 tiles
    { tap: [48, 9, 9], channels: 32, prev: false }, // k = 2, 8 of 9 columns and rows: 4 tiles a row, 48 input channels
    { tap: [48, 10, 10], channels: 16, prev: false, layout: 'channels_last' }, // k = 2: 5 tiles a row (4 and 1), no compiled size
    { tap: [64, 8, 8], prev: true, layout: 'channels_last' }, // 64 channels, a group of 4 tiles
    { tap: [16, 32, 32], channels: 64, prev: false, layout: 'channels_last' }, // 16 -> 64 channels, k = 8: four groups of 4
    { tap: [16, 28, 28], channels: 32, prev: false, layout: 'channels_last' }, // k = 7 is odd: the direct loop
    { tap: [16, 24, 24], prev: false, layout: 'channels_last' }, // k = 6: 12 tiles a row (8 and 4), windows of 3 tiles
  ];
  for (const c of cases) {
    const h = new ICHead({ tapShape: c.tap, numClasses: K, previousClasses: c.prev ? K : 0, cascade: { enabled: true }, stride: c.stride, channels: c.channels });
    if (c.layout) h.toMemoryFormat(c.layout);
    h.eval();
    noGrad(() => h.parameters().forEach((t) => t.shape.length === 1 && t.shape[0] === 1 && t.fill_(1.7))); // alpha outside [0, 1]
    noGrad(() =>
      tidy(() => {
        let x = randn([3, ...c.tap]);
        if (c.layout) x = x.contiguous(c.layout);
        const prev = c.prev ? randn([3, K]) : undefined;
        const want = h.forward(x, prev);
        const [logits, lp] = h.exitForward(x, prev);
        assertClose(logits.toNumbers(), want.toNumbers(), { atol: 1e-5, rtol: 1e-5, what: `logits, tap [${c.tap}]` });
        assertClose(lp.toNumbers(), F.logSoftmax(want, 1).toNumbers(), { atol: 1e-5, rtol: 1e-5, what: `log-probs, tap [${c.tap}]` });
        if (c.prev) assert.throws(() => h.exitForward(x), /cascade input/);
        // The runtime's step: the same numbers, log-probabilities as a Float32Array.
        const step = h.exitStep(x, prev);
        assert.deepEqual(step.logits.toNumbers(), logits.toNumbers());
        assert.ok(step.logProbs instanceof Float32Array);
        assert.deepEqual(Array.from(step.logProbs), lp.toNumbers());
        // Into the caller's memory, exactly N * K values.
        const room = new Float32Array(3 * K).fill(42);
        const into = h.exitStep(x, prev, room);
        assert.equal(into.logProbs, room);
        assert.deepEqual(Array.from(room), lp.toNumbers());
        assert.deepEqual(into.logits.toNumbers(), logits.toNumbers());
      }),
    );
    // With gradients it composes forward(), so training still gets them.
    tidy(() => {
      const [logits] = h.exitForward(randn([2, ...c.tap]), c.prev ? randn([2, K]) : undefined);
      logits.sum().backward();
      assert.ok(h.fc.weight.grad, 'gradient reaches the head');
      // The runtime's step composes forward() there too, into the caller's memory when given.
      const x2 = randn([2, ...c.tap]);
      const p2 = c.prev ? randn([2, K]) : undefined;
      const room = new Float32Array(2 * K);
      const step = h.exitStep(x2, p2, room);
      assert.equal(step.logProbs, room);
      assertClose(Array.from(room), F.logSoftmax(h.forward(x2, p2), 1).toNumbers(), { atol: 1e-6, rtol: 1e-6, what: 'log-probs with gradients' });
      assert.throws(() => h.exitStep(x2, p2, new Float32Array(3)), RangeError);
    });
    h.dispose();
  }
});

test('exitStep deciding in the native book: the rows that stay, their logits narrowed in the same call', () => {
  manualSeed(23);
  const K = 5;
  const N = 12;
  const h = new ICHead({ tapShape: [16, 8, 8], numClasses: K, previousClasses: 0, cascade: { enabled: true } });
  h.eval();
  noGrad(() =>
    tidy(() => {
      const x = randn([N, 16, 8, 8]).mul(3);
      const full = h.exitStep(x, undefined, new Float32Array(N * K));
      const top = Array.from({ length: N }, (_, i) => Math.max(...Array.from(full.logProbs.subarray(i * K, (i + 1) * K), Math.exp)));
      const sorted = [...top].sort((a, b) => a - b);
      // Thresholds where some leave and some stay, where all stay, and where all leave.
      for (const tau of [sorted[4] + 1e-6, sorted[N - 3] + 1e-6, 2, 0]) {
        const book = new NativeExitBook(null, N, K, 2, [1, 2]);
        const out = h.exitStep(x, undefined, book.room, book.decider(0, tau));
        const stay = Array.from(book.step(0, out.logProbs, false, tau, out.decided));
        assert.equal(out.decided, true);
        assert.deepEqual(stay.slice().sort((a, b) => a - b), top.flatMap((p, i) => (p > tau ? [] : [i])), `tau ${tau}: the rows below it stay`);
        if (stay.length > 0 && stay.length < N) {
          assert.deepEqual(out.kept?.toNumbers(), stay, 'the positions, in the book\'s order');
          assert.deepEqual(out.logits.toNumbers(), full.logits.takeRows(tensor(stay, [stay.length], 'int32')).toNumbers(), 'their logits');
        } else {
          assert.equal(out.kept, undefined);
          assert.deepEqual(out.logits.shape, [N, K], 'all the logits when none or all leave');
        }
      }
    }),
  );
  h.dispose();
});

test('exitForward: bad inputs are typed errors from the native head, not crashes', () => {
  const h = new ICHead({ tapShape: [4, 8, 8], numClasses: 3 });
  h.eval();
  noGrad(() =>
    tidy(() => {
      assert.throws(() => h.exitForward(randn([2, 4, 8, 8]).to('float64')), (e: Error) => e.name === 'TorchError');
      assert.throws(() => h.exitForward(randn([2, 5, 8, 8])), (e: Error) => e.name === 'TorchError');
      assert.throws(() => h.exitForward(randn([2, 4, 2, 2])), (e: Error) => e.name === 'TorchError');
      // The runtime's memory for the answer: too small, or not float32.
      assert.throws(() => h.exitStep(randn([2, 4, 8, 8]), undefined, new Float32Array(5)), (e: Error) => e.name === 'TorchError' && /5 values, 6 expected/.test(e.message));
      const args = (into: unknown) => [randn([2, 4, 8, 8]).handle, h.conv!.weight.handle, h.conv!.bias?.handle, 1, 1, h.pool!.alpha.handle, h.pool!.kernel, h.fc.weight.handle, h.fc.bias?.handle, undefined, into];
      assert.throws(() => native.icHead(...args(new Float64Array(6))), (e: Error) => e.name === 'TorchError' && /Float32Array/.test(e.message));
      assert.throws(() => native.icHead(...args(new Float32Array(7))), (e: Error) => e.name === 'TorchError' && /7 values, 6 expected/.test(e.message));
      assert.throws(() => native.icHead(...args([0, 0, 0, 0, 0, 0])), (e: Error) => e.name === 'TorchError');
    }),
  );
  h.dispose();
});

test('the fused head: each sample\'s numbers the same at any batch it serves and thread count, close to oneDNN\'s past its reach (64 channels, odd windows, above 8 samples), weights re-read after an update, NaN kept', () => {
  manualSeed(5);
  const K = 10;
  // ResNet-56's three heads (Winograd), an odd window (the direct loop) and 64 channels with one (oneDNN past 8 samples).
  for (const [tap, channels] of [[[16, 32, 32], 16], [[32, 16, 16], 16], [[32, 16, 16], 32], [[64, 8, 8], 64], [[16, 28, 28], 16], [[64, 12, 12], 64]] as [number[], number][]) {
    const h = new ICHead({ tapShape: tap, numClasses: K, previousClasses: K, cascade: { enabled: true }, channels });
    h.toMemoryFormat('channels_last');
    h.eval();
    noGrad(() =>
      tidy(() => {
        const x = randn([4, ...tap]).contiguous('channels_last');
        const prev = randn([4, K]);
        // The runtime narrows its batch at every exit and offline collection
        // runs whole batches: both must give a sample the same bits.
        setNumThreads(2);
        const whole = h.exitForward(x, prev)[0].toNumbers();
        setNumThreads(1);
        for (let i = 0; i < 4; i++) {
          const rows = tensor([i], [1], 'int32');
          const one = h.exitForward(x.takeRows(rows).contiguous('channels_last'), prev.takeRows(rows))[0].toNumbers();
          assert.deepEqual(one, whole.slice(i * K, (i + 1) * K), `tap [${tap}], sample ${i} alone`);
        }
        // Fused at any batch: the same bits in a batch of 12. Past 8 samples a
        // 64-channel head with an odd window runs oneDNN's convolution and the
        // pooling pass: the same numbers up to rounding.
        const big = randn([12, ...tap]).contiguous('channels_last');
        const bigPrev = randn([12, K]);
        const first4 = tensor([0, 1, 2, 3], [4], 'int32');
        const alone = h.exitForward(big.takeRows(first4).contiguous('channels_last'), bigPrev.takeRows(first4))[0].toNumbers();
        const inBig = h.exitForward(big, bigPrev)[0].toNumbers().slice(0, 4 * K);
        if (channels === 64 && Math.floor(tap[1] / 4) % 2 === 1) assertClose(alone, inBig, { atol: 1e-5, rtol: 1e-5, what: `tap [${tap}], 4 against 12 samples` });
        else assert.deepEqual(alone, inBig, `tap [${tap}], 4 against 12 samples`);
        // An in-place update of the convolution's weights is seen (the packed copy is keyed by version).
        h.conv!.weight.mul_(-0.5);
        assertClose(h.exitForward(x, prev)[0].toNumbers(), h.forward(x, prev).toNumbers(), { atol: 1e-5, rtol: 1e-5, what: `tap [${tap}] after a weight update` });
        // A NaN in the map reaches the logits, as through the separate ops.
        const bad = x.clone();
        bad.narrow(0, 1, 1).narrow(2, 3, 1).narrow(3, 3, 1).fill_(Number.NaN);
        const out = h.exitForward(bad.contiguous('channels_last'), prev)[0].toNumbers();
        assert.ok(out.slice(K, 2 * K).every(Number.isNaN), 'the poisoned sample\'s logits are NaN');
        assert.ok(out.slice(0, K).every(Number.isFinite), 'the other samples are untouched');
      }),
    );
    h.dispose();
  }
});
