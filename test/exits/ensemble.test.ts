// The per-exit ensembles: normalised outputs equal to a plain-JS computation
// of the paper's formulas, causality (exit m reads exits <= m only),
// forwardExit, and training on a synthetic problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitEnsembles, type EnsembleKind } from '../../src/exits/ensemble';
import { ExitCombiner } from '../../src/exits/combine';
import type { ExitLogProbs } from '../../src/exits/collect';
import { applyEnsembles, trainEnsembles } from '../../src/train/ensemble';
import { manualSeed, tensor } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import { setNumThreads } from '../../src/tensor/native';
import { assertClose } from '../helpers/assert';

setNumThreads(1);

/** A small deterministic PRNG (mulberry32) and standard normals, independent of the engine. */
function rng(seed: number): { u: () => number; n: () => number } {
  let s = seed >>> 0;
  const u = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = (): number => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, n };
}

const logSoftmaxRow = (z: number[]): number[] => {
  const mx = Math.max(...z);
  const lse = mx + Math.log(z.reduce((s, v) => s + Math.exp(v - mx), 0));
  return z.map((v) => v - lse);
};

/** Random exit log-probabilities [N, M, K] as a flat array. */
function randomLogProbs(N: number, M: number, K: number, seed: number): number[] {
  const r = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < N * M; i++) out.push(...logSoftmaxRow(Array.from({ length: K }, () => 2 * r.n())));
  return out;
}

/** The paper's formulas, computed directly in plain JS: log q [N, M, K]. */
function referenceLogQ(kind: EnsembleKind, lp: number[], N: number, M: number, K: number, w: number[], b: number[]): number[] {
  const out: number[] = [];
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++) {
      const at = (j: number, k: number) => lp[(n * M + j) * K + k];
      if (kind === 'geometric') {
        // q_m ∝ exp(b_m) * prod_{j<=m} p_j^(exp(w_mj) / (m+1)), in log space.
        const z = Array.from({ length: K }, (_, k) => {
          let s = b[m * K + k];
          for (let j = 0; j <= m; j++) s += (Math.exp(w[m * M + j]) / (m + 1)) * at(j, k);
          return s;
        });
        out.push(...logSoftmaxRow(z));
      } else {
        // additive: q_m ∝ sum_{j<=m} exp(w_mj) p_j + exp(b_m); mean: q_m = mean_{j<=m} p_j.
        const s = Array.from({ length: K }, (_, k) => {
          let v = kind === 'additive' ? Math.exp(b[m * K + k]) : 0;
          for (let j = 0; j <= m; j++) v += (kind === 'additive' ? Math.exp(w[m * M + j]) : 1 / (m + 1)) * Math.exp(at(j, k));
          return v;
        });
        const tot = s.reduce((a, c) => a + c, 0);
        out.push(...s.map((v) => Math.log(v / tot)));
      }
    }
  return out;
}

/** Sets an ensemble's w and b to the given values (non-trivial, so exp(w) and b matter). */
function setParams(ens: ExitEnsembles, w: number[], b: number[]): void {
  const sd = ens.stateDict();
  noGrad(() => {
    sd.get('weight')!.copy_(tensor(w, sd.get('weight')!.shape));
    sd.get('bias')!.copy_(tensor(b, sd.get('bias')!.shape));
  });
}

const N = 6;
const M = 4;
const K = 5;

for (const kind of ['geometric', 'additive', 'mean'] as EnsembleKind[]) {
  test(`${kind} ensembles: normalised log-probabilities equal to the formula computed in plain JS`, () => {
    const ens = new ExitEnsembles({ numExits: M, numClasses: K, kind });
    const r = rng(11);
    const w = Array.from({ length: M * M }, () => 0.7 * r.n());
    const b = Array.from({ length: M * K }, () => 0.5 * r.n());
    if (kind === 'mean') assert.equal(ens.parameters().length, 0, 'the mean ensemble has no parameters');
    else {
      assert.deepEqual(ens.parameters().map((p) => p.shape), [[M, M], [M, K]]);
      setParams(ens, w, b);
    }
    const lp = randomLogProbs(N, M, K, 12);
    const got = noGrad(() => tidy(() => ens.forward(tensor(lp, [N, M, K])).toNumbers()));
    assert.equal(got.length, N * M * K);
    for (let row = 0; row < N * M; row++) {
      const s = got.slice(row * K, (row + 1) * K).reduce((a, v) => a + Math.exp(v), 0);
      assert.ok(Math.abs(s - 1) < 1e-5, `row ${row}: exp(log q) sums to ${s}`);
    }
    assertClose(got, referenceLogQ(kind, lp, N, M, K, w, b), { atol: 2e-5, rtol: 1e-4, what: `${kind} vs plain JS` });

    // Exit 0 alone: geometric q_0 = softmax(exp(w_00) log p_0 + b_0); mean q_0 = p_0.
    if (kind === 'mean') assertClose(got.slice(0, K), lp.slice(0, K), { atol: 1e-5, what: 'mean ensemble of one exit is the exit' });

    // Causality: exit m's ensemble reads exits 0..m only.
    const changed = [...lp];
    for (let n = 0; n < N; n++) {
      const fresh = randomLogProbs(1, 1, K, 100 + n);
      for (let k = 0; k < K; k++) changed[(n * M + (M - 1)) * K + k] = fresh[k];
    }
    const got2 = noGrad(() => tidy(() => ens.forward(tensor(changed, [N, M, K])).toNumbers()));
    for (let n = 0; n < N; n++)
      for (let m = 0; m < M; m++) {
        const a = got.slice((n * M + m) * K, (n * M + m + 1) * K);
        const c = got2.slice((n * M + m) * K, (n * M + m + 1) * K);
        if (m < M - 1) assert.deepEqual(c, a, `sample ${n} exit ${m} does not read the last exit`);
        else assert.notDeepEqual(c, a, `sample ${n}: the last exit's ensemble reads it`);
      }

    // forwardExit(m) on the first m+1 exits equals row m of forward().
    noGrad(() =>
      tidy(() => {
        const all = tensor(lp, [N, M, K]);
        const full = ens.forward(all);
        for (let m = 0; m < M; m++) {
          const one = ens.forwardExit(m, all.narrow(1, 0, m + 1).contiguous());
          assert.deepEqual(one.shape, [N, K]);
          assertClose(one.toNumbers(), full.select(1, m).contiguous().toNumbers(), { atol: 1e-5, what: `${kind} forwardExit(${m})` });
        }
      }),
    );
    // The JS combiner (offline evaluation and the runtimes) equals forward() up to float32 rounding.
    const viaCombiner = ens.combiner().combineAll(Float32Array.from(lp), N);
    assertClose(Array.from(viaCombiner), got, { atol: 2e-5, rtol: 1e-4, what: `${kind} combiner vs forward()` });
    for (let row = 0; row < N * M; row++) {
      const s = viaCombiner.slice(row * K, (row + 1) * K).reduce((a, v) => a + Math.exp(v), 0);
      assert.ok(Math.abs(s - 1) < 1e-6, `combiner row ${row}: exp(log q) sums to ${s}`);
    }
    // The FLOPs of exit m's ensemble grow with m.
    for (let m = 1; m < M; m++) assert.ok(ens.exitFlops(m) > ens.exitFlops(m - 1));
    ens.dispose();
  });
}

test('geometric ensembles start as the plain geometric mean: w ~ N(0, 0.01), b = 0', () => {
  manualSeed(13);
  const ens = new ExitEnsembles({ numExits: 8, numClasses: 3 });
  const [w, b] = ens.parameters().map((p) => p.toNumbers());
  assert.ok(w.every((v) => Math.abs(v) < 0.06), 'small initial weights');
  assert.ok(w.some((v) => v !== 0));
  assert.ok(b.every((v) => v === 0));
  ens.dispose();
});

/**
 * Synthetic exits: exit j's logits are s_j * onehot(label) + independent N(0, 1) noise, so
 * every exit carries information the others lack and combining them helps.
 */
function syntheticExits(n: number, strengths: number[], numClasses: number, seed: number): ExitLogProbs {
  const r = rng(seed);
  const Mx = strengths.length;
  const logProbs = new Float32Array(n * Mx * numClasses);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = Math.floor(r.u() * numClasses);
    labels[i] = y;
    strengths.forEach((s, j) => {
      const z = Array.from({ length: numClasses }, (_, k) => (k === y ? s : 0) + r.n());
      logProbs.set(logSoftmaxRow(z), (i * Mx + j) * numClasses);
    });
  }
  return { numSamples: n, numExits: Mx, numClasses, logProbs, labels };
}

function exitAccuracy(e: ExitLogProbs, m: number): number {
  let correct = 0;
  for (let i = 0; i < e.numSamples; i++) {
    const row = e.logProbs.subarray((i * e.numExits + m) * e.numClasses, (i * e.numExits + m + 1) * e.numClasses);
    let best = 0;
    for (let k = 1; k < e.numClasses; k++) if (row[k] > row[best]) best = k;
    if (best === e.labels[i]) correct++;
  }
  return (100 * correct) / e.numSamples;
}

test('trainEnsembles lowers the loss; the trained ZTW ensemble at the last exit beats the last exit alone', () => {
  const strengths = [1.0, 1.5, 1.5, 2.0];
  const train = syntheticExits(1200, strengths, 5, 21);
  const test_ = syntheticExits(1000, strengths, 5, 22);
  const { ensembles, losses } = trainEnsembles(train, { kind: 'geometric', epochs: 60, lr: 0.02, batchSize: 256, seed: 0 }, { silent: true });
  assert.equal(losses.length, 60);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses[59] < losses[0] - 0.05, `loss ${losses[0]} -> ${losses[59]}`);
  const out = applyEnsembles(ensembles, test_);
  assert.equal(out.logProbs.length, test_.logProbs.length);
  const last = strengths.length - 1;
  const alone = exitAccuracy(test_, last);
  const ens = exitAccuracy(out, last);
  assert.ok(ens >= alone, `ensemble ${ens}% vs last exit alone ${alone}%`);
  assert.ok(ens > alone + 3, `independent evidence from earlier exits helps: ${ens}% vs ${alone}%`);
  // Learned weights put more trust in the stronger exits at the last exit (row M-1).
  const w = ensembles.memberWeights().toNumbers().slice(last * strengths.length, (last + 1) * strengths.length);
  assert.ok(w[3] > w[0], `w(exit 4) ${w[3]} > w(exit 1) ${w[0]}`);
  ensembles.dispose();

  const additive = trainEnsembles(train, { kind: 'additive', epochs: 30, lr: 0.02, batchSize: 256, seed: 0 }, { silent: true });
  assert.ok(additive.losses[29] < additive.losses[0], `additive loss ${additive.losses[0]} -> ${additive.losses[29]}`);
  additive.ensembles.dispose();
  const mean = trainEnsembles(train, { kind: 'mean', epochs: 30, lr: 0.02, batchSize: 256, seed: 0 }, { silent: true });
  assert.deepEqual(mean.losses, [], 'the mean ensemble has nothing to train');
  assert.ok(exitAccuracy(applyEnsembles(mean.ensembles, test_), last) > alone, 'even the plain mean of probabilities helps here');
});

test('trainEnsembles is deterministic for a seed', () => {
  const train = syntheticExits(300, [1, 1, 1], 4, 31);
  const a = trainEnsembles(train, { kind: 'geometric', epochs: 5, lr: 0.01, batchSize: 128, seed: 3 }, { silent: true });
  const b = trainEnsembles(train, { kind: 'geometric', epochs: 5, lr: 0.01, batchSize: 128, seed: 3 }, { silent: true });
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.ensembles.memberWeights().toNumbers(), b.ensembles.memberWeights().toNumbers());
});

test('ExitCombiner rejects inconsistent weights, members and exits', () => {
  const spec = { kind: 'geometric' as const, numClasses: 2, weights: [[1], [0.5, 0.5]], bias: [[0, 0], [0, 0]] };
  const c = new ExitCombiner(spec);
  assert.deepEqual(Array.from(c.combine(0, [Float32Array.from([Math.log(0.25), Math.log(0.75)])], 1), Math.exp).map((v) => +v.toFixed(6)), [0.25, 0.75]);
  assert.throws(() => new ExitCombiner({ ...spec, weights: [[1], [1]] }), /exit 1 needs 2 member weights/);
  assert.throws(() => new ExitCombiner({ ...spec, bias: [[0], [0, 0]] }), /exit 0 needs 2 bias values/);
  assert.throws(() => new ExitCombiner({ ...spec, kind: 'bogus' as never }), /unknown kind/);
  assert.throws(() => c.combine(2, [], 1), /out of range/);
  assert.throws(() => c.combine(1, [new Float32Array(2)], 1), /needs 2 members/);
  assert.throws(() => c.combine(0, [new Float32Array(3)], 1), /member 0 has 3 values, expected 2/);
  assert.throws(() => c.combineAll(new Float32Array(5), 1), /expected 1 x 2 x 2/);
});

test('ExitCombiner with batch rows: members kept by batch position give the packed answer exactly', () => {
  const K = 3;
  const spec = { kind: 'geometric' as const, numClasses: K, weights: [[1], [0.7, 0.4], [0.2, 0.3, 0.9]], bias: [[0, 0, 0], [0.1, -0.2, 0], [0.3, 0, -0.1]] };
  const c = new ExitCombiner(spec);
  const N = 5;
  const rows = Int32Array.from([4, 1, 3]); // the samples still running, by batch position
  const full = [0, 1, 2].map((j) => Float32Array.from({ length: N * K }, (_, i) => -Math.abs(Math.sin(7 * j + i)) * 3));
  const packed = full.map((m) => Float32Array.from(Array.from(rows).flatMap((r) => Array.from(m.subarray(r * K, (r + 1) * K)))));
  assert.deepEqual(Array.from(c.combine(2, full, rows.length, rows)), Array.from(c.combine(2, packed, rows.length)));
  assert.throws(() => c.combine(2, full, 2, rows), /3 row indices for 2 samples/);
  assert.throws(() => c.combine(2, full, 3, Int32Array.from([4, 1, 5])), /row 5 is outside member 0/);
});
