// Backbones: tap counts and shapes, the staged forward, the keepRows protocol
// (a batched runtime narrows the batch between taps), grey and 64x64 inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackbone, CifarResNet, type Backbone } from '../../src/models';
import { releaseTaps, type StagedForward } from '../../src/models/backbone';
import { manualSeed, randn, tensor } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import type { Tensor } from '../../src/tensor/tensor';
import { assertClose } from '../helpers/assert';
import { native, setNumThreads } from '../../src/tensor/native';

// Small tensors on a shared 2-core machine: one intra-op thread avoids OpenMP contention.
setNumThreads(1);

process.env.ZTW_QUIET = '1';

/** Runs staged() to the end, collecting the yielded tap tensors; optionally narrows rows after tap `narrowAt`. */
function runStaged(model: Backbone, x: Tensor, narrowAt = -1, rows?: Tensor): { taps: Tensor[]; logits: Tensor } {
  const taps: Tensor[] = [];
  const gen = model.staged(x);
  let r = gen.next();
  while (!r.done) {
    taps.push(r.value);
    r = gen.next(taps.length - 1 === narrowAt ? rows : undefined);
  }
  return { taps, logits: r.value };
}

const CASES: { arch: string; taps: number; input: number[]; classes: number; first: number[]; last: number[] }[] = [
  { arch: 'resnet56', taps: 27, input: [3, 32, 32], classes: 10, first: [16, 32, 32], last: [64, 8, 8] },
  { arch: 'vgg16bn', taps: 14, input: [3, 32, 32], classes: 10, first: [64, 32, 32], last: [512] },
  { arch: 'wrn32_4', taps: 15, input: [3, 32, 32], classes: 10, first: [64, 32, 32], last: [256, 8, 8] },
  { arch: 'mobilenet', taps: 13, input: [3, 32, 32], classes: 10, first: [64, 32, 32], last: [1024, 2, 2] },
  { arch: 'naturecnn', taps: 2, input: [4, 84, 84], classes: 18, first: [32, 20, 20], last: [64, 9, 9] },
  { arch: 'resnet50', taps: 16, input: [3, 224, 224], classes: 1000, first: [256, 56, 56], last: [2048, 7, 7] },
];

for (const c of CASES) {
  test(`${c.arch}: ${c.taps} taps whose declared shapes match the staged forward; forward() = staged logits`, () => {
    manualSeed(1);
    const model = createBackbone(c.arch).eval();
    try {
      assert.equal(model.taps.length, c.taps);
      assert.deepEqual(model.inputShape, c.input);
      assert.equal(model.numClasses, c.classes);
      assert.deepEqual(model.taps[0].shape, c.first);
      assert.deepEqual(model.taps[c.taps - 1].shape, c.last);
      assert.equal(new Set(model.taps.map((t) => t.name)).size, c.taps, 'tap names are unique');
      noGrad(() =>
        tidy(() => {
          const x = randn([2, ...c.input]);
          const { taps, logits } = runStaged(model, x);
          assert.equal(taps.length, c.taps, 'staged() yields one tensor per tap');
          taps.forEach((t, i) => assert.deepEqual(t.shape, [2, ...model.taps[i].shape], `tap ${i} (${model.taps[i].name})`));
          assert.deepEqual(logits.shape, [2, c.classes]);
          const direct = model.forward(x);
          assert.deepEqual(direct.toNumbers(), logits.toNumbers(), 'forward() equals the staged logits (eval mode)');
          // The protocol: a backbone never uses a tap after yielding the next one, so
          // releaseTaps may free each as soon as the pass moves on (a use would throw E_DISPOSED).
          const passed: Tensor[] = [];
          const gen = releaseTaps(model.staged(x));
          let r = gen.next();
          for (; !r.done; r = gen.next()) passed.push(r.value);
          assert.ok(passed.every((t) => t.isDisposed), 'every tap is freed once passed');
          assert.deepEqual(r.value.toNumbers(), logits.toNumbers(), 'the same logits with taps freed early');
        }),
      );
    } finally {
      model.dispose();
    }
  });
}

// keepRows: narrowing after a tap must give the kept rows the logits of a full forward.
for (const [arch, input, narrowAt] of [
  ['resnet20', [3, 32, 32], 1],
  ['vgg16bn', [3, 32, 32], 13], // after the FC tap: the narrowing happens on flat features
  ['wrn32_4', [3, 32, 32], 4],
  ['mobilenet', [3, 32, 32], 0],
  ['naturecnn', [4, 84, 84], 0],
  ['resnet50', [3, 64, 64], 3],
] as const) {
  test(`${arch}: sending row indices into staged() narrows the batch; kept rows equal a full forward`, () => {
    manualSeed(2);
    const model = createBackbone(arch, { inChannels: input[0], inputSize: input[1] }).eval();
    try {
      noGrad(() =>
        tidy(() => {
          const x = randn([5, ...input]);
          const full = model.forward(x);
          const keep = [0, 3, 4];
          const rows = tensor(BigInt64Array.from(keep, BigInt), [keep.length], 'int64');
          const { taps, logits } = runStaged(model, x, narrowAt, rows);
          assert.equal(taps.length, model.taps.length);
          taps.forEach((t, i) => assert.equal(t.shape[0], i <= narrowAt ? 5 : keep.length, `batch at tap ${i}`));
          assert.deepEqual(logits.shape, [keep.length, model.numClasses]);
          const expected = full.indexSelect(0, rows);
          assertClose(logits.toNumbers(), expected.toNumbers(), { atol: 1e-4, rtol: 1e-4, what: `${arch} kept rows` });
          // The dropped rows really are gone: a different subset gives different logits.
          const other = full.indexSelect(0, tensor(BigInt64Array.from([1, 2, 0], BigInt), [3], 'int64'));
          assert.notDeepEqual(logits.toNumbers(), other.toNumbers());
        }),
      );
    } finally {
      model.dispose();
    }
  });
}

// consumeTaps: a caller that reads each tap before resuming lets the backbone
// write the next maps into the tap's memory; what it reads must not change.
for (const [arch, input] of [
  ['resnet20', [3, 32, 32]],
  ['resnet50', [3, 64, 64]],
  ['wrn32_4', [3, 32, 32]],
  ['vgg16bn', [3, 32, 32]],
] as const) {
  test(`${arch}: with consumeTaps every tap, read before resuming, and the logits equal a pass that keeps its taps, narrowing or not`, () => {
    manualSeed(3);
    const model = createBackbone(arch, { inChannels: input[0], inputSize: input[1] }).eval();
    try {
      noGrad(() =>
        tidy(() => {
          const x = randn([5, ...input]).contiguous('channels_last');
          const rows = [tensor([0, 2, 3, 4], [4], 'int32'), undefined, tensor([1, 2], [2], 'int32'), undefined];
          const pass = (consumeTaps: boolean) => {
            const seen: number[][] = [];
            const memory: number[] = [];
            const gen = releaseTaps(model.staged(x, { consumeTaps }));
            let r = gen.next();
            for (let i = 0; !r.done; i++) {
              seen.push(r.value.toNumbers());
              memory.push(native.dataId(r.value.handle));
              r = gen.next(i < rows.length ? rows[i] : undefined);
            }
            return { seen, memory, logits: r.value.toNumbers() };
          };
          const kept = pass(false);
          const consumed = pass(true);
          assert.equal(consumed.seen.length, kept.seen.length);
          consumed.seen.forEach((t, i) => assertClose(t, kept.seen[i], { atol: 1e-5, rtol: 1e-5, what: `${arch} tap ${i}` }));
          assertClose(consumed.logits, kept.logits, { atol: 1e-5, rtol: 1e-5, what: `${arch} logits` });
          if (arch !== 'vgg16bn') {
            const reused = consumed.memory.filter((m, i) => i > 0 && m === consumed.memory[i - 1]).length;
            assert.ok(reused > 0, `${arch}: some tap is written where the one before it was`);
            assert.equal(kept.memory.filter((m, i) => i > 0 && m === kept.memory[i - 1]).length, 0, 'without consumeTaps every tap is its own map');
          }
        }),
      );
    } finally {
      model.dispose();
    }
  });
}

test('grey input (inChannels 1): same taps, the stem reads one channel', () => {
  for (const arch of ['resnet56', 'vgg16bn', 'wrn32_4', 'mobilenet']) {
    const grey = createBackbone(arch, { inChannels: 1 }).eval();
    const rgb = createBackbone(arch).eval();
    try {
      assert.deepEqual(grey.inputShape, [1, 32, 32]);
      assert.deepEqual(grey.taps, rgb.taps, `${arch}: tap shapes do not depend on the input channels`);
      const stem = [...grey.namedParameters()][0][1];
      assert.equal(stem.shape[1], 1, `${arch}: stem conv has one input channel`);
      // Only the stem differs: its out_channels * 3 * 3 weights per input channel.
      assert.equal(rgb.numParameters() - grey.numParameters(), stem.shape[0] * 9 * 2, `${arch}: parameter difference`);
      noGrad(() =>
        tidy(() => {
          const { taps, logits } = runStaged(grey, randn([2, 1, 32, 32]));
          taps.forEach((t, i) => assert.deepEqual(t.shape, [2, ...grey.taps[i].shape]));
          assert.deepEqual(logits.shape, [2, 10]);
          assert.throws(() => grey.forward(randn([2, 3, 32, 32])), 'an RGB batch does not fit a grey stem');
        }),
      );
    } finally {
      grey.dispose();
      rgb.dispose();
    }
  }
});

test('64x64 inputs: the stride-2 stem keeps CIFAR map sizes (ResNet, WRN, MobileNet); VGG widens its FC layers', () => {
  const expect: Record<string, { first: number[]; last: number[] }> = {
    resnet56: { first: [16, 32, 32], last: [64, 8, 8] },
    wrn32_4: { first: [64, 32, 32], last: [256, 8, 8] },
    mobilenet: { first: [64, 32, 32], last: [1024, 2, 2] },
    vgg16bn: { first: [64, 64, 64], last: [2048] },
  };
  for (const [arch, e] of Object.entries(expect)) {
    const model = createBackbone(arch, { inputSize: 64, numClasses: 200 }).eval();
    try {
      assert.deepEqual(model.inputShape, [3, 64, 64]);
      assert.deepEqual(model.taps[0].shape, e.first, `${arch} first tap`);
      assert.deepEqual(model.taps[model.taps.length - 1].shape, e.last, `${arch} last tap`);
      noGrad(() =>
        tidy(() => {
          const { taps, logits } = runStaged(model, randn([2, 3, 64, 64]));
          taps.forEach((t, i) => assert.deepEqual(t.shape, [2, ...model.taps[i].shape], `${arch} tap ${i}`));
          assert.deepEqual(logits.shape, [2, 200]);
        }),
      );
    } finally {
      model.dispose();
    }
  }
  // ResNet's stem conv really is strided at 64x64 and not at 32x32.
  const r64 = new CifarResNet({ depth: 8, inputSize: 64 });
  const r32 = new CifarResNet({ depth: 8 });
  assert.deepEqual(r64.conv1.options.stride, 2);
  assert.deepEqual(r32.conv1.options.stride, 1);
  r64.dispose();
  r32.dispose();
});

test('CifarResNet depth must be 6n+2; depth 8 has one block per stage', () => {
  assert.throws(() => new CifarResNet({ depth: 10 }), /6n\+2/);
  const m = new CifarResNet({ depth: 8 });
  assert.equal(m.taps.length, 3);
  assert.deepEqual(m.taps.map((t) => t.shape), [[16, 32, 32], [32, 16, 16], [64, 8, 8]]);
  m.dispose();
  assert.throws(() => createBackbone('resnet57'), /unknown architecture 'resnet57'/);
});

test('the dropout option reaches every dropout layer (WRN blocks, VGG classifier); training mode shows it', () => {
  for (const [arch, dflt] of [['wrn32_4', 0.3], ['vgg16bn', 0.5]] as const) {
    const ps = (b: Backbone): number[] => [...b.namedModules()].filter(([, m]) => m.constructor.name === 'Dropout').map(([, m]) => (m as unknown as { options: { p: number } }).options.p);
    const ref = ps(createBackbone(arch, { inChannels: 1 }));
    const off = createBackbone(arch, { inChannels: 1, dropout: 0 });
    assert.ok(ref.length > 0 && ref.every((p) => p === dflt), `${arch}: the reference's ${dflt}`);
    assert.deepEqual(ps(off), ref.map(() => 0));
    // Without dropout, training-mode forwards of the same batch agree (BN uses batch statistics either way).
    noGrad(() =>
      tidy(() => {
        off.train();
        const x = randn([4, 1, 32, 32]);
        assertClose(off.forward(x).toNumbers(), off.forward(x).toNumbers(), { atol: 1e-5, what: `${arch} dropout 0` });
      }),
    );
  }
});

test('releaseTaps: a caller that stops early ends the backbone\'s pass; the tap in hand stays alive', () => {
  let finished = false;
  function* fake(): StagedForward {
    try {
      yield randn([1]);
      yield randn([1]);
      return randn([1]);
    } finally {
      finished = true;
    }
  }
  tidy(() => {
    const gen = releaseTaps(fake());
    const first = gen.next();
    const second = gen.next();
    assert.ok(!first.done && first.value.isDisposed, 'the first tap was freed when the second came');
    gen.return(undefined as never);
    assert.ok(finished, 'the backbone generator was closed');
    assert.ok(!second.done && !second.value.isDisposed, 'the current tap is still the caller\'s');
  });
});

test('resnet20: an int32 index of kept rows is read through by the 16-channel blocks (no copy), with the numbers of the copied rows and the taps untouched', () => {
  manualSeed(8);
  const model = createBackbone('resnet20', { inChannels: 1 }).eval();
  try {
    noGrad(() =>
      tidy(() => {
        // Stage 1 (taps 0-2) narrows twice, stage 2 once; int64 indices take the copy path.
        const keepAt: Record<number, number[]> = { 0: [0, 2, 3, 5, 6], 1: [4, 0, 2], 4: [1, 2] };
        for (const layout of ['channels_last', 'contiguous'] as const) {
          const x = randn([7, 1, 32, 32]).contiguous(layout);
          const pass = (dtype: 'int32' | 'int64') => {
            const taps: Tensor[] = [];
            const atYield: number[][] = [];
            const gen = model.staged(x);
            let r = gen.next();
            for (let i = 0; !r.done; i++) {
              taps.push(r.value);
              atYield.push(r.value.toNumbers());
              const keep = keepAt[i];
              r = gen.next(keep ? (dtype === 'int32' ? tensor(keep, [keep.length], 'int32') : tensor(BigInt64Array.from(keep, BigInt), [keep.length], 'int64')) : undefined);
            }
            taps.forEach((t, i) => assert.deepEqual(t.toNumbers(), atYield[i], `${layout} ${dtype}: tap ${i} unchanged after the pass`));
            return { taps: atYield, logits: r.value.toNumbers() };
          };
          const through = pass('int32');
          const copied = pass('int64');
          through.taps.forEach((t, i) => assert.deepEqual(t, copied.taps[i], `${layout}: tap ${i}`));
          assert.deepEqual(through.logits, copied.logits, `${layout}: logits`);
        }
        // A bad index is an error, not a read outside the map.
        const gen = model.staged(randn([3, 1, 32, 32]).contiguous('channels_last'));
        gen.next();
        assert.throws(() => gen.next(tensor([0, 5], [2], 'int32')), /out of range/);
      }),
    );
  } finally {
    model.dispose();
  }
});
