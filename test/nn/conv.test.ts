// Inference convolutions on oneDNN (native/src/dnnl_conv.cc) and our
// 16-channel loop (native/src/conv16.cc), which keep primitives and
// reordered or packed weights across calls: the caches must never hand back
// an answer for other weights, shapes or epilogues.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from '../../src/nn/functional';
import { cat, manualSeed, randn, tensor as tensorOf } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import { native, setNumThreads } from '../../src/tensor/native';
import type { Tensor } from '../../src/tensor/tensor';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

/** The same convolution through libtorch's autograd path (gradients wanted: the cache is not used). */
function reference(x: Tensor, w: Tensor, b: Tensor | undefined, o: F.Conv2dArgs): number[] {
  return tidy(() => {
    const wg = w.detach().requiresGrad_(true);
    return F.conv2d(x, wg, b, o).toNumbers();
  });
}

test('no-grad convolutions equal libtorch for strides, padding, dilation, groups, bias and both layouts', () => {
  manualSeed(11);
  const cases: [number[], number[], F.Conv2dArgs, boolean][] = [
    [[2, 3, 9, 9], [8, 3, 3, 3], { padding: 1 }, true],
    [[4, 16, 16, 16], [32, 16, 3, 3], { stride: 2, padding: 1 }, false],
    [[3, 8, 10, 10], [8, 1, 3, 3], { padding: 2, dilation: 2, groups: 8 }, true],
    [[2, 6, 7, 7], [4, 3, 1, 1], { stride: 2, groups: 2 }, false],
    [[1, 1, 12, 12], [4, 1, 5, 3], { padding: [2, 1] }, true],
  ];
  for (const [xs, ws, o, bias] of cases)
    for (const layout of ['contiguous', 'channels_last'] as const)
      tidy(() => {
        const x = randn(xs).contiguous(layout);
        const w = randn(ws);
        const b = bias ? randn([ws[0]]) : undefined;
        const got = noGrad(() => F.conv2d(x, w, b, o));
        assertClose(got.toNumbers(), reference(x, w, b, o), { atol: 1e-4, rtol: 1e-4, what: `${JSON.stringify({ xs, ws, o, layout })}` });
      });
});

test('an in-place update of the weights is seen by the next call (the reordered copy is refreshed)', () => {
  manualSeed(12);
  const x = randn([2, 4, 6, 6]).contiguous('channels_last');
  const w = randn([5, 4, 3, 3]);
  const run = (): number[] => noGrad(() => tidy(() => F.conv2d(x, w, undefined, { padding: 1 }).toNumbers()));
  const before = run();
  noGrad(() => void w.mul_(-2));
  const after = run();
  assertClose(after, before.map((v) => -2 * v), { atol: 1e-4, rtol: 1e-4, what: 'after w.mul_(-2)' });
});

test('many short-lived weight tensors of one shape each get their own answer', () => {
  manualSeed(13);
  const x = randn([1, 3, 5, 5]);
  for (let i = 0; i < 40; i++)
    tidy(() => {
      const w = randn([2, 3, 3, 3]);
      const got = noGrad(() => F.conv2d(x, w, undefined, { padding: 1 }));
      assertClose(got.toNumbers(), reference(x, w, undefined, { padding: 1 }), { atol: 1e-4, rtol: 1e-4, what: `weight ${i}` });
      w.dispose(); // frees the address for the next weight
    });
});

test('every batch size has its own primitive: a batch equals its rows run one at a time', () => {
  manualSeed(14);
  const w = randn([8, 4, 3, 3]);
  const b = randn([8]);
  for (const n of [1, 5, 2, 7, 1, 3]) // sizes revisited: cached primitives are reused
    tidy(() => {
      const x = randn([n, 4, 6, 6]).contiguous('channels_last');
      const whole = noGrad(() => F.conv2d(x, w, b, { padding: 1 }));
      const rows = noGrad(() => cat(Array.from({ length: n }, (_, i) => F.conv2d(x.narrow(0, i, 1), w, b, { padding: 1 })), 0));
      assertClose(whole.toNumbers(), rows.toNumbers(), { atol: 1e-5, rtol: 1e-5, what: `batch ${n}` });
    });
});

test('a one-channel input in both layouts gives channels-last maps when the weights are channels-last', () => {
  manualSeed(15);
  const x = randn([2, 1, 8, 8]);
  const w = randn([4, 1, 3, 3]).contiguous('channels_last');
  const y = noGrad(() => F.conv2d(x, w, undefined, { padding: 1 }));
  assert.equal(y.isContiguous('channels_last'), true);
  assertClose(y.toNumbers(), reference(x, w, undefined, { padding: 1 }), { atol: 1e-4, rtol: 1e-4, what: 'grey stem' });
  // An NCHW-only input keeps NCHW out.
  const y2 = noGrad(() => F.conv2d(randn([2, 3, 8, 8]), randn([4, 3, 3, 3]), undefined, { padding: 1 }));
  assert.equal(y2.isContiguous(), true);
});

test('a fused addend of the wrong shape is a typed error, not a crash', () => {
  const x = randn([2, 3, 6, 6]);
  const w = randn([4, 3, 3, 3]);
  assert.throws(() => noGrad(() => F.conv2dFused(x, w, undefined, { padding: 1 }, { add: randn([2, 4, 5, 5]) })), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'E_ARG');
    assert.match(e.message, /fused addend must be float32 \[2, 4, 6, 6\]/);
    return true;
  });
});

test('a consumed addend receives the result (sum into its memory), equal to the separate add; an addend that overlaps the input is not written', () => {
  manualSeed(16);
  for (const relu of [false, true])
    for (const n of [1, 3])
      tidy(() => {
        const x = randn([n, 16, 8, 8]).contiguous('channels_last');
        const w = randn([16, 16, 3, 3]);
        const b = randn([16]);
        const add = randn([n, 16, 8, 8]).contiguous('channels_last');
        const want = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { add, relu })).toNumbers();
        const addend = add.clone();
        const version = addend.version;
        const got = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { add: addend, relu, consumeAdd: true }));
        assertClose(got.toNumbers(), want, { atol: 1e-4, rtol: 1e-4, what: `relu ${relu}, batch ${n}` });
        assert.equal(native.dataId(got.handle), native.dataId(addend.handle), 'written into the addend');
        assert.ok(addend.version > version, 'the addend\'s version moved on');
        // The input as its own addend (a 1x1 convolution of one shape): read while written, so a new map.
        const w1 = randn([16, 16, 1, 1]);
        const self = x.clone();
        const wantSelf = noGrad(() => F.conv2dFused(x, w1, undefined, {}, { add: x, relu })).toNumbers();
        const gotSelf = noGrad(() => F.conv2dFused(self, w1, undefined, {}, { add: self, relu, consumeAdd: true }));
        assertClose(gotSelf.toNumbers(), wantSelf, { atol: 1e-4, rtol: 1e-4, what: 'input as addend' });
        assert.notEqual(native.dataId(gotSelf.handle), native.dataId(self.handle));
        assertClose(self.toNumbers(), x.toNumbers(), { atol: 0, what: 'the input is untouched' });
        // An addend in the other layout is copied first: the caller's tensor is untouched.
        const nchw = add.contiguous();
        const gotCopy = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { add: nchw, relu, consumeAdd: true }));
        assertClose(gotCopy.toNumbers(), want, { atol: 1e-4, rtol: 1e-4, what: 'NCHW addend' });
        assertClose(nchw.toNumbers(), add.toNumbers(), { atol: 0, what: 'a copied addend is left as it was' });
      });
});

test('one or two images through a 3x3 kernel (the implementation is timed on the first call) equal libtorch, with each epilogue', () => {
  manualSeed(17);
  for (const n of [1, 2, 1])
    for (const epilogue of [{}, { relu: true }, { add: true }, { add: true, relu: true }])
      tidy(() => {
        const x = randn([n, 16, 8, 8]).contiguous('channels_last');
        const w = randn([16, 16, 3, 3]);
        const b = randn([16]);
        const add = epilogue.add ? randn([n, 16, 8, 8]).contiguous('channels_last') : undefined;
        const got = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { add, relu: 'relu' in epilogue }));
        let want = tensorOf(reference(x, w, b, { padding: 1 }), [n, 16, 8, 8]);
        if (add) want = want.add(add.contiguous());
        if ('relu' in epilogue) want = want.relu();
        assertClose(got.toNumbers(), want.toNumbers(), { atol: 1e-4, rtol: 1e-4, what: `batch ${n} ${JSON.stringify(epilogue)}` });
      });
});

test('reluInput: the input becomes relu(x) in its own memory first, in the same call; with gradients, or a strided input, a typed error', () => {
  tidy(() => {
    for (const layout of ['contiguous', 'channels_last'] as const) {
      const x = randn([2, 4, 6, 6]).contiguous(layout);
      const w = randn([4, 4, 3, 3]).contiguous(layout);
      const b = randn([4]);
      const want = noGrad(() => F.conv2dFused(F.relu(x), w, b, { padding: 1 }, { relu: true })).toNumbers();
      const wantX = F.relu(x).toNumbers();
      const id = native.dataId(x.handle);
      const got = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { relu: true, reluInput: true }));
      assertClose(got.toNumbers(), want, { atol: 1e-5, rtol: 1e-5, what: `conv(relu(x)), ${layout}` });
      assert.deepEqual(x.toNumbers(), wantX, 'x is relu(x) now');
      assert.equal(native.dataId(x.handle), id, 'in its own memory');
    }
    const leaf = randn([1, 2, 4, 4]).requiresGrad_();
    const w = randn([2, 2, 3, 3]);
    assert.throws(() => F.conv2dFused(leaf, w, undefined, { padding: 1 }, { reluInput: true }), (e: Error) => e.name === 'TorchError' && /reluInput/.test(e.message));
    const strided = randn([1, 2, 4, 8]).narrow(3, 0, 4);
    assert.throws(() => noGrad(() => F.conv2dFused(strided, w, undefined, { padding: 1 }, { reluInput: true })), (e: Error) => e.name === 'TorchError' && /dense/.test(e.message));
  });
});

test('keepInput: reluInput applies on the way and x stays as it is, with reluAdd on an addend that is x, in the 16-channel loop and elsewhere', () => {
  manualSeed(23);
  tidy(() => {
    // 16 channels channels-last: our loop (ReLU in its padded copy and its store); 8 channels or NCHW: copies, then oneDNN.
    for (const [c, layout] of [[16, 'channels_last'], [8, 'channels_last'], [16, 'contiguous']] as const) {
      const x = randn([3, c, 8, 8]).contiguous(layout);
      const w = randn([c, c, 3, 3]);
      const b = randn([c]);
      const before = x.toNumbers();
      const rx = F.relu(x);
      const want = noGrad(() => F.conv2dFused(rx, w, b, { padding: 1 }, { add: rx, relu: true })).toNumbers();
      const got = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { relu: true, reluInput: true, keepInput: true, add: x, reluAdd: true }));
      assertClose(got.toNumbers(), want, { atol: 1e-4, rtol: 1e-4, what: `relu(conv(relu(x)) + relu(x)), ${c} channels ${layout}` });
      assert.deepEqual(x.toNumbers(), before, 'x is unchanged');
    }
  });
});

test('the 16-channel loop (native/src/conv16.cc) equals libtorch for every band width, input channel count and epilogue, sample by sample', () => {
  manualSeed(18);
  // Widths: bands of 16 (32), 16 + 8 + 4 (28), 16 + 1 (17), 4 + 2 + 1 (7), 1; input channels of a compiled size (16) and not (32, 48).
  const cases: [number, number, number][] = [[32, 16, 32], [28, 16, 9], [17, 32, 5], [7, 48, 7], [1, 16, 3]];
  for (const [W, C, H] of cases)
    for (const n of [1, 3])
      for (const epilogue of [{}, { relu: true }, { add: true }, { add: true, relu: true, consume: true }])
        tidy(() => {
          const x = randn([n, C, H, W]).contiguous('channels_last');
          const w = randn([16, C, 3, 3]);
          const b = randn([16]);
          const add = epilogue.add ? randn([n, 16, H, W]).contiguous('channels_last') : undefined;
          const addend = add && 'consume' in epilogue ? add.clone() : add;
          const got = noGrad(() => F.conv2dFused(x, w, b, { padding: 1 }, { add: addend, relu: 'relu' in epilogue, consumeAdd: 'consume' in epilogue }));
          assert.equal(got.isContiguous('channels_last'), true);
          if ('consume' in epilogue) assert.equal(native.dataId(got.handle), native.dataId(addend!.handle), 'written into the addend');
          let want = tensorOf(reference(x, w, b, { padding: 1 }), [n, 16, H, W]);
          if (add) want = want.add(add.contiguous());
          if ('relu' in epilogue) want = want.relu();
          const what = `[${n}, ${C}, ${H}, ${W}] ${JSON.stringify(epilogue)}`;
          assertClose(got.toNumbers(), want.toNumbers(), { atol: 1e-4, rtol: 1e-4, what });
          // Each sample's numbers do not depend on the batch it came in.
          if (n > 1 && !add) {
            const one = noGrad(() => F.conv2dFused(x.narrow(0, 1, 1), w, b, { padding: 1 }, { relu: 'relu' in epilogue }));
            assert.deepEqual(one.toNumbers(), got.narrow(0, 1, 1).toNumbers(), `${what}: sample 1 alone`);
          }
        });
});

test('the 16-channel loop: a NaN reaches the outputs whose window holds it, through the ReLU too; new weights are seen', () => {
  manualSeed(19);
  const x = randn([1, 16, 6, 6]);
  noGrad(() => x.narrow(2, 2, 1).narrow(3, 3, 1).fill_(Number.NaN));
  const xc = x.contiguous('channels_last');
  const w = randn([16, 16, 3, 3]);
  for (const relu of [false, true]) {
    const y = noGrad(() => F.conv2dFused(xc, w, undefined, { padding: 1 }, { relu })).contiguous();
    const plane = y.narrow(1, 0, 1).toNumbers(); // channel 0, rows 0-5 x columns 0-5
    for (let i = 0; i < 6; i++)
      for (let j = 0; j < 6; j++) assert.equal(Number.isNaN(plane[i * 6 + j]), Math.abs(i - 2) <= 1 && Math.abs(j - 3) <= 1, `relu ${relu}, pixel (${i}, ${j})`);
  }
  const clean = randn([2, 16, 5, 5]).contiguous('channels_last');
  const before = noGrad(() => F.conv2d(clean, w, undefined, { padding: 1 })).toNumbers();
  noGrad(() => void w.mul_(-2));
  assertClose(noGrad(() => F.conv2d(clean, w, undefined, { padding: 1 })).toNumbers(), before.map((v) => -2 * v), { atol: 1e-4, rtol: 1e-4, what: 'after w.mul_(-2)' });
});
