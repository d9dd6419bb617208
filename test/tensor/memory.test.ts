// Scoped memory: tidy/keep/dispose, the live-tensor count, and a long training
// loop whose tensor count and resident memory stay flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import {
  tensor, zeros, randn, randint, split, tidy, keep, dispose, liveTensors, manualSeed, setNumThreads, Tensor,
} from '../../src/tensor';
import * as nn from '../../src/nn';
import { F } from '../../src/nn';
import { SGD } from '../../src/optim';
import { native } from '../../src/tensor/native';

// Tiny ops: one thread avoids OpenMP spin-waits on a busy 2-core machine.
setNumThreads(1);

test('liveTensors counts handles exactly', () => {
  const base = liveTensors();
  const a = randn([3]);
  const b = a.add(1);
  assert.equal(liveTensors(), base + 2);
  const parts = split(randn([6]), 2); // the input and its three parts
  assert.equal(parts.length, 3);
  assert.equal(liveTensors(), base + 6);
  const { values, indices } = randn([4, 5]).maxDim(1);
  assert.equal(liveTensors(), base + 9);
  // Views are handles of their own.
  const v = a.view(3, 1);
  assert.equal(liveTensors(), base + 10);
  dispose([a, b, parts, { values, indices }, v]);
  assert.equal(liveTensors(), base + 2, 'only the unnamed split and maxDim inputs remain');
  // Every read of .grad makes a fresh handle on the same storage.
  const w = tensor([1, 2]).requiresGrad_();
  w.mul(w).sum().backward();
  const g1 = w.grad!;
  const g2 = w.grad!;
  assert.notEqual(g1, g2);
  assert.equal(liveTensors(), base + 7, 'w, its two graph outputs, g1 and g2');
  g1.dispose();
  assert.deepEqual(g2.toNumbers(), [2, 4], 'disposing one handle leaves the storage to the others');
});

test('tidy frees intermediates and keeps what it returns, in nested arrays and objects', () => {
  const base = liveTensors();
  let a!: Tensor;
  let b!: Tensor;
  const out = tidy(() => {
    a = randn([2, 2]);
    b = a.mul(2);
    const c = b.add(1);
    const d = c.exp();
    const e = d.sum();
    return { list: [c, [d]], nested: { deep: { e } }, n: 3, s: 'x', nothing: null };
  });
  assert.equal(a.isDisposed, true);
  assert.equal(b.isDisposed, true);
  assert.equal(out.list[0] instanceof Tensor && !out.list[0].isDisposed, true);
  const [c, [d]] = out.list as [Tensor, [Tensor]];
  assert.equal(d.isDisposed, false);
  assert.equal(out.nested.deep.e.isDisposed, false);
  assert.equal(out.n, 3);
  assert.equal(liveTensors(), base + 3);
  // The returned values are intact.
  assert.ok(Math.abs(out.nested.deep.e.item() - d.sum().item()) < 1e-5);
  dispose(out);
  assert.equal(c.isDisposed, true);
  assert.equal(liveTensors(), base + 1, 'the d.sum() made outside tidy');

  // A non-tensor result frees everything.
  const n = tidy(() => randn([10]).add(1).sum().item());
  assert.equal(typeof n, 'number');
  assert.equal(liveTensors(), base + 1);
  // A tensor from outside the scope may be returned and is left alone.
  const outside = randn([2]);
  const same = tidy(() => {
    randn([2]);
    return outside;
  });
  assert.equal(same, outside);
  assert.equal(outside.isDisposed, false);
  assert.equal(liveTensors(), base + 2);
});

test('keep() and Tensor.keep() survive tidy; nested tidy hands results to the outer scope', () => {
  const base = liveTensors();
  let kept!: Tensor;
  let keptToo!: Tensor;
  let innerResult!: Tensor;
  let innerTemp!: Tensor;
  tidy(() => {
    kept = keep(randn([3]));
    keptToo = randn([3]).keep();
    innerResult = tidy(() => {
      innerTemp = randn([3]);
      return innerTemp.add(1);
    });
    assert.equal(innerTemp.isDisposed, true, 'inner temporaries go when the inner tidy returns');
    assert.equal(innerResult.isDisposed, false, 'the inner result lives on in the outer scope');
    return undefined;
  });
  assert.equal(innerResult.isDisposed, true, 'the outer tidy then frees the inner result it did not return');
  assert.equal(kept.isDisposed, false);
  assert.equal(keptToo.isDisposed, false);
  assert.equal(liveTensors(), base + 2);
  // keep() inside a nested tidy escapes every enclosing scope.
  let deep!: Tensor;
  tidy(() => tidy(() => { deep = keep(randn([1])); }));
  assert.equal(deep.isDisposed, false);
  dispose([kept, keptToo, deep]);
  assert.equal(liveTensors(), base);
});

test('exceptions inside tidy still free its tensors and propagate', () => {
  const base = liveTensors();
  const made: Tensor[] = [];
  assert.throws(
    () =>
      tidy(() => {
        made.push(randn([4]), randn([4]).mul(3));
        throw new Error('fail inside tidy');
      }),
    /fail inside tidy/,
  );
  assert.ok(made.every((t) => t.isDisposed));
  assert.equal(liveTensors(), base);
  // A native error thrown mid-way frees too.
  assert.throws(() => tidy(() => randn([2, 3]).add(1).matmul(randn([2, 3]))), /cannot be multiplied/);
  assert.equal(liveTensors(), base);
  // An inner failure caught by an outer tidy: the inner scope is freed, the outer continues.
  const r = tidy(() => {
    const keepMe = randn([2]);
    try {
      tidy(() => {
        randn([100]);
        throw new Error('inner');
      });
    } catch {
      /* handled */
    }
    return keepMe;
  });
  assert.equal(r.isDisposed, false);
  assert.equal(liveTensors(), base + 1);
  r.dispose();
  // tidy refuses async functions, and frees what the synchronous part made.
  assert.throws(() => tidy((async () => randn([3])) as unknown as () => Tensor), /synchronous/);
  assert.equal(liveTensors(), base);
  // After all of this the scope stack is balanced: a plain tensor is not tracked by anything.
  const free = randn([1]);
  tidy(() => undefined);
  assert.equal(free.isDisposed, false);
  free.dispose();
});

test('garbage collection releases unreferenced tensors (finalizer)', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
  };
  await settle(); // earlier tests left unreferenced tensors behind
  const base = liveTensors();
  const held = randn([16]);
  (() => {
    for (let i = 0; i < 200; i++) randn([16]);
  })();
  assert.equal(liveTensors(), base + 201);
  await settle();
  assert.equal(held.isDisposed, false, 'a referenced tensor is not collected');
  assert.equal(liveTensors(), base + 1, 'finalizers released every dropped handle');
  held.dispose();
  // Tensors that leave a scope (returned by the outermost tidy, or keep()ed inside one) get the same backstop.
  (() => {
    for (let i = 0; i < 50; i++) tidy(() => randn([16]));
    tidy(() => {
      for (let i = 0; i < 50; i++) randn([16]).keep();
    });
  })();
  assert.equal(liveTensors(), base + 100);
  await settle();
  assert.equal(liveTensors(), base, 'returned and kept tensors dropped undisposed are released too');
  // A disposed tensor leaves the backstop: collecting it later frees nothing twice.
  const d = randn([4]);
  d.dispose();
  const other = randn([4]);
  await settle();
  assert.equal(other.isDisposed, false);
  assert.equal(liveTensors(), base + 1);
  other.dispose();
});

test('2,000 training steps: flat tensor count, bounded resident memory', () => {
  manualSeed(0);
  const model = new nn.Sequential(
    new nn.Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: 1 }),
    new nn.BatchNorm2d({ numFeatures: 4 }),
    new nn.ReLU(),
    new nn.AvgPool2d({ kernelSize: 2 }),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 4 * 4 * 4, outFeatures: 3 }),
  );
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
  const x = randn([8, 1, 8, 8]);
  const y = randint(0, 3, [8]);
  const counts: number[] = [];
  let rss500 = 0;
  const rssTrace: number[] = [];
  let firstLoss = 0;
  let lastLoss = 0;
  for (let step = 0; step < 2000; step++) {
    const loss = tidy(() => {
      opt.zeroGrad();
      const l = F.crossEntropy(model.forward(x), y);
      l.backward();
      opt.step();
      return l.item();
    });
    if (step === 0) firstLoss = loss;
    lastLoss = loss;
    if (step >= 10 && step % 50 === 0) counts.push(liveTensors());
    if (step === 500) rss500 = process.memoryUsage().rss;
    if (step % 500 === 0) rssTrace.push(Math.round(process.memoryUsage().rss / 2 ** 20));
  }
  const rss2000 = process.memoryUsage().rss;
  assert.ok(counts.every((c) => c === counts[0]), `live tensors drift: ${counts.join(',')}`);
  const growthMb = (rss2000 - rss500) / 2 ** 20;
  // liveTensors() is flat by now, so growth here is native memory the allocator does not reuse.
  assert.ok(growthMb < 30, `rss grew by ${growthMb.toFixed(1)} MB between step 500 and 2000 (MB every 500 steps: ${rssTrace.join(', ')})`);
  assert.ok(lastLoss < firstLoss * 0.5, `the loop actually trained: ${firstLoss} -> ${lastLoss}`);
  // Momentum buffers (one per parameter) and BN buffers are all that was added.
  const base = counts[0];
  opt.dispose();
  assert.equal(liveTensors(), base - model.parameters().length);
  model.dispose();
});

test('a shrinking batch reuses the map block freed last (up to 2x larger), not a block of its own size', () => {
  const stats = () => native.allocatorStats() as number[]; // [cached, live, hits, misses]
  // Two cached blocks: one of the shrunk size, freed first, and an 8 MB one freed last.
  const small = zeros([90, 16, 32, 32]); // 5.9 MB
  const big = zeros([128, 16, 32, 32]); // 8 MB
  const smallId = native.dataId(small.handle);
  const bigId = native.dataId(big.handle);
  small.dispose();
  big.dispose();
  const before = stats();
  const shrunk = zeros([90, 16, 32, 32]);
  assert.equal(native.dataId(shrunk.handle), bigId, 'the block freed last, though larger');
  assert.equal(stats()[2], before[2] + 1, 'a hit');
  const again = zeros([90, 16, 32, 32]);
  assert.equal(native.dataId(again.handle), smallId, 'then the next one that fits');
  // Past 2x slack a block is not taken: a map of 2 MB does not hold an 8 MB block.
  shrunk.dispose();
  const tiny = zeros([32, 16, 32, 32]);
  assert.notEqual(native.dataId(tiny.handle), bigId);
  assert.deepEqual([...tiny.sum().toNumbers(), ...again.sum().toNumbers()], [0, 0], 'reused blocks are rewritten by their op');
  dispose([again, tiny]);
});
