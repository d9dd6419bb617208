// MultiStepLR, clipGradNorm, and resuming optimizers from their state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, manualSeed, liveTensors, tidy, setNumThreads, Tensor } from '../../src/tensor';
import { SGD, Adam, MultiStepLR, clipGradNorm, type Optimizer } from '../../src/optim';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

const close = (a: number, b: number, what = ''): void => assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${what}: ${a} != ${b}`);

test('MultiStepLR: lr around the milestones', () => {
  const opt = new SGD([tensor([1]).requiresGrad_()], { lr: 0.1 });
  const sched = new MultiStepLR(opt, { milestones: [35, 70, 90] });
  const expected: [number, number][] = [
    [0, 0.1], [1, 0.1], [34, 0.1], [35, 0.01], [36, 0.01], [69, 0.01], [70, 0.001], [71, 0.001], [89, 0.001], [90, 1e-4], [500, 1e-4],
  ];
  for (const [e, lr] of expected) close(sched.lrAt(e), lr, `lrAt(${e})`);
  // Stepping once per epoch changes the optimizer's lr exactly at the milestones.
  const seen: number[] = [opt.lr];
  for (let e = 1; e <= 95; e++) {
    sched.step();
    assert.equal(sched.epoch, e);
    seen.push(opt.lr);
  }
  for (const [e, lr] of expected) if (e <= 95) close(seen[e], lr, `after ${e} steps`);
  const changes = seen.flatMap((lr, e) => (e > 0 && lr !== seen[e - 1] ? [e] : []));
  assert.deepEqual(changes, [35, 70, 90]);
});

test('MultiStepLR: gamma, unsorted and repeated milestones, base lr captured at construction', () => {
  const opt = new SGD([tensor([1]).requiresGrad_()], { lr: 0.8 });
  const sched = new MultiStepLR(opt, { milestones: [10, 3, 10], gamma: 0.5 });
  assert.deepEqual(sched.milestones, [3, 10, 10]);
  close(sched.lrAt(2), 0.8);
  close(sched.lrAt(3), 0.4);
  close(sched.lrAt(9), 0.4);
  close(sched.lrAt(10), 0.1, 'a repeated milestone applies gamma twice, as PyTorch');
  assert.equal(sched.baseLr, 0.8);
  opt.lr = 123; // the base stays what it was when the schedule was made
  sched.setEpoch(0);
  close(opt.lr, 0.8);
});

test('MultiStepLR: setEpoch resumes where a run stopped', () => {
  const a = new SGD([tensor([1]).requiresGrad_()], { lr: 0.1 });
  const sa = new MultiStepLR(a, { milestones: [35, 70] });
  for (let e = 0; e < 72; e++) sa.step();
  // A resumed run: fresh optimizer and schedule, jump to the saved epoch.
  const b = new SGD([tensor([1]).requiresGrad_()], { lr: 0.1 });
  const sb = new MultiStepLR(b, { milestones: [35, 70] });
  sb.setEpoch(72);
  assert.equal(sb.epoch, 72);
  close(b.lr, a.lr);
  close(b.lr, 0.001);
  for (let e = 0; e < 20; e++) {
    sa.step();
    sb.step();
    assert.equal(b.lr, a.lr);
  }
  // Going back works too (e.g. a restart from an earlier checkpoint).
  sb.setEpoch(34);
  close(b.lr, 0.1);
  sb.step();
  close(b.lr, 0.01);
});

test('clipGradNorm: returns the pre-clip norm and scales gradients to the max norm', () => {
  const p1 = tensor([0, 0]).requiresGrad_();
  const p2 = tensor([[0]]).requiresGrad_();
  const p3 = tensor([0]).requiresGrad_(); // no gradient: ignored
  const setGrads = (): void => {
    p1.grad = undefined;
    p2.grad = undefined;
    // Gradients through backward: d/dp sum(p * c) = c.
    p1.mul(tensor([3, 4])).sum().add(p2.mul(tensor([[12]])).sum()).backward();
  };
  setGrads();
  const base = liveTensors();
  const norm = clipGradNorm([p1, p2, p3], 6.5);
  assert.equal(liveTensors(), base, 'no tensors leaked');
  close(norm, 13, 'pre-clip norm sqrt(9 + 16 + 144)');
  const g1 = p1.grad!.toNumbers();
  const g2 = p2.grad!.toNumbers();
  const scale = 6.5 / (13 + 1e-6);
  assertClose(g1, [3 * scale, 4 * scale], { atol: 1e-6, what: 'p1 grad' });
  assertClose(g2, [12 * scale], { atol: 1e-6, what: 'p2 grad' });
  const after = Math.hypot(...g1, ...g2);
  assert.ok(Math.abs(after - 6.5) < 1e-5, `norm after clipping ${after}`);
  assert.equal(p3.grad, undefined);
  // Clipping again reports the new norm and leaves it (now below the max, up to eps).
  const again = clipGradNorm([p1, p2], 6.5);
  assert.ok(Math.abs(again - 6.5) < 1e-5);

  // Below the max: a no-op that still reports the norm.
  setGrads();
  close(clipGradNorm([p1, p2], 20), 13);
  assert.deepEqual(p1.grad!.toNumbers(), [3, 4]);
  assert.deepEqual(p2.grad!.toNumbers(), [12]);
  // No gradients at all: 0.
  assert.equal(clipGradNorm([p3], 1), 0);
  assert.equal(clipGradNorm([], 1), 0);

  // The clipped gradient is what the optimizer applies.
  setGrads();
  clipGradNorm([p1, p2], 1.3);
  new SGD([p1, p2], { lr: 1 }).step();
  assertClose(p1.toNumbers(), [-0.3, -0.4], { atol: 1e-5, what: 'p1 after a clipped step' });
  assertClose(p2.toNumbers(), [-1.2], { atol: 1e-5, what: 'p2 after a clipped step' });
});

/** A deterministic loss of the parameters (fixed data), so runs can be compared bit for bit. */
function makeProblem(): { params: Tensor[]; step: (opt: Optimizer) => void } {
  manualSeed(42);
  const w = randn([4, 3]).requiresGrad_();
  const b = randn([3]).requiresGrad_();
  const x = randn([8, 4]);
  const t = randn([8, 3]);
  return {
    params: [w, b],
    step: (opt) =>
      tidy(() => {
        opt.zeroGrad();
        x.matmul(w).add(b).tanh().sub(t).square().mean().backward();
        opt.step();
      }),
  };
}

for (const [name, make] of [
  ['SGD (momentum, Nesterov, weight decay)', (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
  ['Adam', (ps: Tensor[]) => new Adam(ps, { lr: 0.05, weightDecay: 1e-3 })],
] as [string, (ps: Tensor[]) => Optimizer][]) {
  test(`${name}: stateDict/loadStateDict resumes identically`, () => {
    // Reference: 10 uninterrupted steps.
    const ref = makeProblem();
    const refOpt = make(ref.params);
    for (let i = 0; i < 10; i++) ref.step(refOpt);
    const want = ref.params.map((p) => p.toNumbers());

    // Interrupted: 5 steps, save, a fresh optimizer restores, 5 more steps.
    const run = makeProblem();
    const first = make(run.params);
    for (let i = 0; i < 5; i++) run.step(first);
    const saved = first.stateDict();
    assert.ok(saved.tensors.size > 0, 'the optimizer has state to save');
    assert.deepEqual(saved.scalars, { lr: first.lr, stepCount: 5 });
    const second = make(run.params);
    second.lr = 999; // overwritten by the restore
    second.loadStateDict(saved);
    assert.equal(second.stepCount, 5);
    assert.equal(second.lr, first.lr);
    first.dispose(); // the restored state is a copy, independent of the first optimizer
    for (let i = 0; i < 5; i++) run.step(second);
    assert.deepEqual(run.params.map((p) => p.toNumbers()), want, 'bit-identical to the uninterrupted run');
    assert.equal(second.stepCount, 10);

    // Control: without the state (fresh momentum/moments) the result differs, so the check above has teeth.
    const cold = makeProblem();
    const c1 = make(cold.params);
    for (let i = 0; i < 5; i++) cold.step(c1);
    const c2 = make(cold.params);
    for (let i = 0; i < 5; i++) cold.step(c2);
    assert.notDeepEqual(cold.params.map((p) => p.toNumbers()), want);

    // Restoring an optimizer from its own state dict is harmless.
    const own = second.stateDict();
    const ownValues = [...own.tensors].map(([k, t]) => [k, t.toNumbers()]);
    second.loadStateDict(own);
    assert.deepEqual([...second.stateDict().tensors].map(([k, t]) => [k, t.toNumbers()]), ownValues);
    // A key for a parameter the optimizer does not have is refused, and the state is kept.
    const bad = { tensors: new Map([['7.momentum_buffer', tensor([1])]]), scalars: { lr: 1, stepCount: 1 } };
    assert.throws(() => second.loadStateDict(bad), /no parameter 7 \(have 2\)/);
    assert.deepEqual([...second.stateDict().tensors].map(([k, t]) => [k, t.toNumbers()]), ownValues);
    assert.equal(second.stepCount, 10);
  });
}
