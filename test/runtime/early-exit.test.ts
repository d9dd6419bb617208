// The batched runtime must reproduce the offline simulation sample for
// sample: same exit, same prediction, same cost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CifarResNet } from '../../src/models';
import { EarlyExitNetwork, ExitEnsembles } from '../../src/exits';
import { EarlyExitRuntime } from '../../src/runtime/early-exit';
import { confidenceExit, patienceExit } from '../../src/eval';
import { manualSeed, randn, noGrad, tidy, stack, setNumThreads, type Tensor } from '../../src/tensor';
import { F } from '../../src/nn';
import { probsPerExit } from '../../src/exits/collect';
import { applyEnsembles } from '../../src/train/ensemble';

setNumThreads(1);

function setup(withEnsemble: boolean) {
  manualSeed(3);
  const bb = new CifarResNet({ depth: 14, numClasses: 5, inChannels: 1 });
  // Non-trivial batch-norm statistics, so the conv-BN folding is exercised.
  noGrad(() => {
    for (const [k, t] of bb.stateDict()) if (k.endsWith('running_var')) t.uniform_(0.5, 2);
    for (const [k, t] of bb.stateDict()) if (k.endsWith('running_mean')) t.uniform_(-0.2, 0.2);
  });
  bb.freeze().eval();
  const net = new EarlyExitNetwork(bb, { cascade: { enabled: withEnsemble } });
  for (const h of net.heads) noGrad(() => h.fc.weight.mul_(20)); // spread the confidences
  const ens = withEnsemble ? new ExitEnsembles({ numExits: net.numExits, numClasses: 5 }) : null;
  if (ens) noGrad(() => ens.parameters()[0].normal_(0, 0.5));
  const costs = { exitCosts: Array.from({ length: net.numExits }, (_, i) => 10 * (i + 1)), baseCost: 10 * net.numExits };
  return { net, ens, costs, runtime: new EarlyExitRuntime(net, ens, costs) };
}

function offline(net: EarlyExitNetwork, ens: ExitEnsembles | null, x: Tensor) {
  return noGrad(() =>
    tidy(() => {
      net.eval();
      const lp = stack(net.allLogits(x).map((l) => F.logSoftmax(l, 1)), 1);
      const [N, M, K] = lp.shape;
      const cached = { numSamples: N, numExits: M, numClasses: K, logProbs: lp.data() as Float32Array, labels: new Int32Array(N) };
      return { numHeads: M, numSamples: N, numClasses: K, probs: probsPerExit(ens ? applyEnsembles(ens, cached) : cached) };
    }),
  );
}

for (const withEnsemble of [false, true]) {
  test(`runtime equals the offline simulation (${withEnsemble ? 'ZTW' : 'SDN'}, confidence and patience)`, () => {
    const { net, ens, runtime, costs } = setup(withEnsemble);
    const x = randn([48, 1, 32, 32]);
    const outs = offline(net, ens, x);
    const M = net.numExits;
    let nonTrivial = 0;
    for (const tau of [0, 0.3, 0.5, 0.7, 0.9, 0.99, 1, 1.5]) {
      const want = confidenceExit(outs, { tau });
      const got = runtime.run(x, { kind: 'confidence', tau });
      assert.deepEqual(Array.from(got.exitIndex), Array.from(want.exitHead), `exits at tau ${tau}`);
      assert.deepEqual(Array.from(got.prediction), Array.from(want.prediction), `predictions at tau ${tau}`);
      assert.deepEqual(Array.from(got.cost), Array.from(want.exitHead, (m) => costs.exitCosts[m]));
      const spread = new Set(got.exitIndex).size;
      if (spread > 1) nonTrivial++;
      if (tau === 0) assert.ok(got.exitIndex.every((m) => m === 0), 'tau 0 exits every sample at the first head');
      if (tau >= 1) assert.ok(got.exitIndex.every((m) => m === M - 1), 'tau >= 1 exits every sample at the last exit');
    }
    assert.ok(nonTrivial >= 2, 'some thresholds split the batch across exits');
    for (const patience of [1, 2, 3, M]) {
      const want = patienceExit(outs, { patience });
      const got = runtime.run(x, { kind: 'patience', patience });
      assert.deepEqual(Array.from(got.exitIndex), Array.from(want.exitHead), `exits at patience ${patience}`);
      assert.deepEqual(Array.from(got.prediction), Array.from(want.prediction), `predictions at patience ${patience}`);
    }
  });
}

test('tau above 1 gives exactly the backbone\'s own answers; batch of one equals the batch', () => {
  const { net, runtime } = setup(false);
  const x = randn([16, 1, 32, 32]);
  const own = noGrad(() => tidy(() => net.backbone.forward(x).argmax(1).toNumbers()));
  const got = runtime.run(x, { kind: 'confidence', tau: 1.01 });
  assert.deepEqual(Array.from(got.prediction), own);
  const batched = runtime.run(x, { kind: 'confidence', tau: 0.8 });
  for (let i = 0; i < 16; i++) {
    const one = tidy(() => runtime.run(x.narrow(0, i, 1), { kind: 'confidence', tau: 0.8 }));
    assert.equal(one.exitIndex[0], batched.exitIndex[i], `sample ${i} exit`);
    assert.equal(one.prediction[0], batched.prediction[i], `sample ${i} prediction`);
  }
  // The runtime keeps its bookkeeping buffers from call to call: back at 16 after the single images, the same answers.
  const again = runtime.run(x, { kind: 'confidence', tau: 0.8 });
  assert.deepEqual([Array.from(again.exitIndex), Array.from(again.prediction), Array.from(again.probs)], [Array.from(batched.exitIndex), Array.from(batched.prediction), Array.from(batched.probs)]);
  assert.notEqual(again.probs, batched.probs, 'results are fresh arrays, not the buffers');
});

test('runtime rejects bad thresholds, patience, shapes, dtypes and NaN inputs', () => {
  const { runtime, net } = setup(true);
  const x = randn([2, 1, 32, 32]);
  assert.throws(() => runtime.run(x, { kind: 'confidence', tau: -0.1 }), /tau must be a number >= 0/);
  assert.throws(() => runtime.run(x, { kind: 'confidence', tau: NaN }), /tau must be a number/);
  assert.throws(() => runtime.run(x, { kind: 'patience', patience: 0 }), /patience must be an integer >= 1/);
  assert.throws(() => runtime.run(x, { kind: 'patience', patience: net.numExits + 1 }), /exceeds/);
  assert.throws(() => runtime.run(randn([2, 3, 32, 32]), { kind: 'confidence', tau: 0.5 }), /input must be \[N, 1, 32, 32\]/);
  assert.throws(() => runtime.run(x.to('float64'), { kind: 'confidence', tau: 0.5 }), /must be float32/);
  assert.throws(() => runtime.run(x.mul(Number.NaN), { kind: 'confidence', tau: 0.5 }), /NaN/);
  assert.throws(() => runtime.run(x, { kind: 'bogus' } as never), /unknown kind/);
});

test('the runtime\'s cached ensemble weights follow in-place updates of the ensemble', () => {
  const { net, ens, costs, runtime } = setup(true);
  const x = randn([24, 1, 32, 32]);
  const policy = { kind: 'confidence' as const, tau: 0.7 };
  const before = runtime.run(x, policy);
  noGrad(() => (ens as ExitEnsembles).parameters()[0].mul_(-3)); // in place: same tensor, new version
  const after = runtime.run(x, policy);
  const fresh = new EarlyExitRuntime(net, ens, costs).run(x, policy);
  assert.deepEqual(Array.from(after.exitIndex), Array.from(fresh.exitIndex));
  assert.deepEqual(Array.from(after.probs), Array.from(fresh.probs));
  assert.notDeepEqual(Array.from(after.probs), Array.from(before.probs), 'the update changed the answers');
  runtime.dispose();
});
