// The one-graph models (src/export/fused.ts) against the per-exit runtime
// they replace: both run the same exit graphs in onnxruntime, and the fused
// graph computes the ensemble and the rule in ONNX ops (float64) where the
// per-exit runtime does it in JS, so the answers must be the same exits and
// predictions, and probabilities equal to float32 rounding; for every
// ensemble kind, both rules, batches and one sample at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyNetwork } from './model';
import { exportEarlyExit, FUSED_FILES } from '../../src/export/export';
import { decodeModel, type DecodedGraph } from '../../src/export/onnx-proto';
import { loadOnnxEarlyExit, validateManifest, ManifestError, type ExitPolicy, type ExitResult } from '../../src/runtime/onnx';
import { EarlyExitRuntime } from '../../src/runtime/early-exit';
import { randn } from '../../src/tensor/create';
import { compareDecisions } from '../../src/export/verify';
import type { EnsembleKind } from '../../src/exits/ensemble';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-fused-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// The fused graph's exit subgraphs are optimised by onnxruntime in another
// context than the per-exit files (other fusions), so their numbers differ in
// the last float32 bits: probabilities within 1e-5, and a decision may differ
// only where a confidence (or, for patience, an argmax) is that close to a tie.
function assertSameAnswers(a: ExitResult, b: ExitResult, perExit: Float32Array[], policy: ExitPolicy, what: string, rowsOfA?: number[]): void {
  const K = b.probs.length / b.prediction.length;
  const rows = (per: number): number[] => (rowsOfA ?? Array.from(b.prediction, (_, n) => n)).flatMap((i: number) => Array.from({ length: per }, (_, k) => i * per + k));
  const aRows: ExitResult = {
    prediction: Int32Array.from(rows(1), (i) => a.prediction[i]),
    exitIndex: Int32Array.from(rows(1), (i) => a.exitIndex[i]),
    cost: Float64Array.from(rows(1), (i) => a.cost[i]),
    probs: Float32Array.from(rows(K), (i) => a.probs[i]),
  };
  const per = perExit.map((p) => Float32Array.from(rows(K), (i) => p[i]));
  const c = compareDecisions(aRows, b, per, K, policy, 1e-5);
  assert.deepEqual(c.unexplained, [], `${what}: samples ${c.unexplained} decide differently away from any tie`);
  assert.ok(c.maxProbDiff <= 1e-5, `${what}: probabilities differ by ${c.maxProbDiff}`);
  b.exitIndex.forEach((e, n) => e === aRows.exitIndex[n] && assert.equal(b.cost[n], aRows.cost[n]));
}

const CASES: { name: string; ensemble: EnsembleKind | null; cascade?: boolean; policies: ExitPolicy[] }[] = [
  { name: 'geometric ensembles, confidence', ensemble: 'geometric', policies: [0, 0.4, 0.6, 0.8, 0.95, 1.01].map((tau) => ({ kind: 'confidence', tau })) },
  { name: 'geometric ensembles, patience', ensemble: 'geometric', policies: [1, 2, 3, 4].map((patience) => ({ kind: 'patience', patience })) },
  { name: 'additive ensembles, confidence', ensemble: 'additive', policies: [0.1, 0.2, 0.3, 0.4].map((tau) => ({ kind: 'confidence', tau })) },
  { name: 'mean ensembles, confidence', ensemble: 'mean', policies: [0.8, 0.9, 0.95, 0.99].map((tau) => ({ kind: 'confidence', tau })) },
  { name: 'SDN heads (no ensemble, no cascade), confidence', ensemble: null, cascade: false, policies: [0.6, 0.8, 0.9, 0.97].map((tau) => ({ kind: 'confidence', tau })) },
];

for (const c of CASES)
  test(`one-graph model = per-exit runtime = libtorch runtime: ${c.name}`, async (t) => {
    const dir = tmpDir(t);
    const { net, ensembles } = tinyNetwork({ ensemble: c.ensemble, cascade: c.cascade, seed: 21 });
    const { manifest, files } = exportEarlyExit({ net, ensembles, outDir: dir, policy: c.policies[0] });
    assert.deepEqual(manifest.fused, { rule: c.policies[0].kind, ...FUSED_FILES });
    for (const f of Object.values(FUSED_FILES)) assert.ok(files.includes(path.join(dir, f)));
    const fused = await loadOnnxEarlyExit(dir, { threads: 1 });
    const staged = await loadOnnxEarlyExit(dir, { threads: 1, fused: false });
    t.after(() => Promise.all([fused.release(), staged.release()]));
    const lt = new EarlyExitRuntime(net, ensembles, manifest.costs);
    const N = 40;
    const x = randn([N, 1, 32, 32]);
    const data = x.data() as Float32Array;
    const exitsSeen = new Set<number>();
    const perExit = await staged.allExits(data);
    for (const policy of c.policies) {
      assert.equal(fused.usesFused(policy), true);
      assert.equal(staged.usesFused(policy), false);
      const a = await staged.run(data, policy);
      const b = await fused.run(data, policy);
      assert.deepEqual(Object.keys(fused.lastTimings), [FUSED_FILES.batch], 'one session call for the batch');
      assertSameAnswers(a, b, perExit, policy, `${JSON.stringify(policy)} batch`);
      // The libtorch runtime decides the same (its probabilities come from libtorch's kernels: 1e-4).
      const l = lt.run(x, policy);
      const vsLibtorch = compareDecisions(l, b, perExit, 10, policy);
      assert.deepEqual(vsLibtorch.unexplained, [], `${JSON.stringify(policy)}: libtorch decides samples ${vsLibtorch.unexplained} otherwise`);
      b.exitIndex.forEach((e) => exitsSeen.add(e));
      // One sample at a time: the one-sample graph, the same answers as in the batch.
      for (const n of [0, 7, 19, 33]) {
        const one = await fused.run({ data: data.subarray(n * 1024, (n + 1) * 1024), dims: [1, 1, 32, 32] }, policy);
        assert.deepEqual(Object.keys(fused.lastTimings), [FUSED_FILES.single]);
        assertSameAnswers(a, one, perExit, policy, `${JSON.stringify(policy)} sample ${n} alone`, [n]);
      }
    }
    // Early and final exits at least (the random tiny networks' mean ensembles are confident early or not at all).
    assert.ok(exitsSeen.size >= 2 && exitsSeen.has(0) && exitsSeen.has(net.numExits - 1), `the policies exercise several exits (saw ${[...exitsSeen]})`);
    // Only the one-image graph loaded (as the browser demo does): batches run exit by exit, single images through it.
    const onlySingle = await loadOnnxEarlyExit(dir, { threads: 1, fused: 'single' });
    t.after(() => onlySingle.release());
    assert.equal(onlySingle.usesFused(c.policies[0], 1), true);
    assert.equal(onlySingle.usesFused(c.policies[0], N), false);
    const viaStages = await onlySingle.run(data, c.policies[0]);
    assert.ok(Object.keys(onlySingle.lastTimings).every((f) => /^exit_\d+\.onnx$/.test(f)), `a batch runs exit by exit: ${Object.keys(onlySingle.lastTimings)}`);
    assertSameAnswers(await staged.run(data, c.policies[0]), viaStages, perExit, c.policies[0], 'batch without the batch graph');
    await onlySingle.run({ data: data.subarray(0, 1024), dims: [1, 1, 32, 32] }, c.policies[0]);
    assert.deepEqual(Object.keys(onlySingle.lastTimings), [FUSED_FILES.single]);
    // The other rule than the exported one runs exit by exit.
    const other: ExitPolicy = c.policies[0].kind === 'confidence' ? { kind: 'patience', patience: 2 } : { kind: 'confidence', tau: 0.7 };
    assert.equal(fused.usesFused(other), false);
    assertSameAnswers(await staged.run(data, other), await fused.run(data, other), perExit, other, 'other rule');
    x.dispose();
  });

test('one-graph model: one If per exit boundary, nested, the rule input named for its rule; manifest checks', (t) => {
  const dir = tmpDir(t);
  const { net, ensembles } = tinyNetwork({ seed: 3 });
  const { manifest } = exportEarlyExit({ net, ensembles, outDir: dir });
  const M = net.numExits;
  for (const [file, inputShape] of [[FUSED_FILES.batch, ['N', 1, 32, 32]], [FUSED_FILES.single, [1, 1, 32, 32]]] as const) {
    const model = decodeModel(new Uint8Array(fs.readFileSync(path.join(dir, file))));
    assert.deepEqual(model.graph.inputs.map((v) => v.name), ['x', 'tau']);
    assert.deepEqual(model.graph.inputs[0].shape, inputShape);
    assert.deepEqual(model.graph.outputs.map((v) => v.name), ['prediction', 'probs', 'exit_index']);
    // Follow the If nodes down the nesting (into the branch that runs the network on): one per level.
    let depth = 0;
    for (let level: DecodedGraph = model.graph; ; ) {
      const ifs = level.nodes.filter((n) => n.op === 'If');
      if (ifs.length === 0) break;
      assert.equal(ifs.length, 1);
      depth++;
      const [a, b] = ['then_branch', 'else_branch'].map((k) => ifs[0].attrs[k] as DecodedGraph);
      level = a.nodes.length >= b.nodes.length ? a : b;
    }
    assert.equal(depth, M - 1, `${file}: one If after every exit but the last`);
  }
  const bad = (fused: unknown, re: RegExp): void => assert.throws(() => validateManifest({ ...manifest, fused }), (e: Error) => e instanceof ManifestError && re.test(e.message));
  bad({ rule: 'vote', batch: 'a.onnx', single: 'b.onnx' }, /fused must name its rule/);
  bad({ rule: 'confidence', batch: '../a.onnx', single: 'b.onnx' }, /fused must name/);
  assert.equal(validateManifest({ ...manifest, fused: null }).fused, null, 'a model exported without them is valid');
  const { manifest: plain, files } = exportEarlyExit({ net, ensembles, outDir: path.join(dir, 'staged-only'), fused: false });
  assert.equal(plain.fused, null);
  assert.ok(!files.some((f) => f.endsWith(FUSED_FILES.batch)));
});
