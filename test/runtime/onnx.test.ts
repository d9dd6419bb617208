// The onnxruntime early-exit runtime against the libtorch one: same exits,
// same answers, probabilities within 1e-4 (a decision may differ only for a
// sample whose confidence is within 1e-4 of tau), for confidence and patience
// rules, with and without ensembles; and its error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyNetwork, FASHION_CLASSES } from '../export/model';
import { exportEarlyExit } from '../../src/export/export';
import { compareDecisions, libtorchExitProbs } from '../../src/export/verify';
import { EarlyExitRuntime } from '../../src/runtime/early-exit';
import { loadOnnxEarlyExit, readManifest, preprocessPixels, validateManifest, ManifestError, OnnxEarlyExitRuntime, nodeOrt, type ExitPolicy, type EarlyExitManifest } from '../../src/runtime/onnx';
import { Normalizer } from '../../src/data/augment';
import { randn } from '../../src/tensor/create';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-onnxrt-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const POLICIES: ExitPolicy[] = [
  { kind: 'confidence', tau: 0 },
  { kind: 'confidence', tau: 0.3 },
  { kind: 'confidence', tau: 0.5 },
  { kind: 'confidence', tau: 0.7 },
  { kind: 'confidence', tau: 0.9 },
  { kind: 'confidence', tau: 1.01 },
  { kind: 'patience', patience: 1 },
  { kind: 'patience', patience: 2 },
  { kind: 'patience', patience: 3 },
];

for (const variant of [
  { name: 'ZTW (cascade + geometric ensembles)', o: { ensemble: 'geometric' as const, seed: 11 } },
  { name: 'SDN (independent heads, no ensemble)', o: { ensemble: null, cascade: false, seed: 12 } },
])
  test(`onnx runtime = libtorch runtime: ${variant.name}`, async (t) => {
    const dir = tmpDir(t);
    const { net, ensembles } = tinyNetwork(variant.o);
    const { manifest } = exportEarlyExit({ net, ensembles, outDir: dir, classNames: FASHION_CLASSES });
    const rt = await loadOnnxEarlyExit(dir, { threads: 1 });
    t.after(() => rt.release());
    const costs = { exitCosts: manifest.costs.exitCosts, baseCost: manifest.costs.baseCost };
    const lt = new EarlyExitRuntime(net, ensembles, costs);
    const N = 48;
    const x = randn([N, 1, 32, 32]);
    const data = x.data() as Float32Array;
    const perExit = libtorchExitProbs(net, ensembles, x);
    const exitsSeen = new Set<number>();
    for (const policy of POLICIES) {
      const a = lt.run(x, policy);
      const b = await rt.run(data, policy);
      const c = compareDecisions(a, b, perExit, 10, policy);
      assert.deepEqual(c.unexplained, [], `${JSON.stringify(policy)}: samples ${c.unexplained} differ away from the threshold`);
      assert.ok(c.maxProbDiff < 1e-4, `${JSON.stringify(policy)}: probabilities differ by ${c.maxProbDiff}`);
      for (let n = 0; n < N; n++) {
        if (a.exitIndex[n] === b.exitIndex[n]) assert.equal(b.cost[n], a.cost[n]);
        exitsSeen.add(b.exitIndex[n]);
      }
      if (policy.kind === 'confidence' && policy.tau === 0) assert.ok(b.exitIndex.every((e) => e === 0));
      if (policy.kind === 'confidence' && policy.tau > 1) assert.ok(b.exitIndex.every((e) => e === net.numExits - 1));
      if (policy.kind === 'patience' && policy.patience === 1) assert.ok(b.exitIndex.every((e) => e === 0));
    }
    assert.ok(exitsSeen.size >= 3, `the policies exercise several exits (saw ${[...exitsSeen]})`);
    // The manifest's own policy is the default; a batch of one is the latency mode.
    const one = await rt.run(data.subarray(0, 1024));
    const ref = lt.run(x.narrow(0, 0, 1), manifest.policy);
    assert.equal(one.exitIndex[0], ref.exitIndex[0]);
    assert.equal(one.prediction[0], ref.prediction[0]);
    assert.ok(Object.keys(rt.lastTimings).length > 0);
  });

test('onnx runtime error paths: missing files, bad manifests, wrong inputs and policies', async (t) => {
  const dir = tmpDir(t);
  const { net, ensembles } = tinyNetwork({ taps: [0, 2], seed: 2 });
  exportEarlyExit({ net, ensembles, outDir: dir });
  const good = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as EarlyExitManifest;

  await assert.rejects(loadOnnxEarlyExit(path.join(dir, 'nope')), /model folder .* does not exist/);
  const empty = tmpDir(t);
  await assert.rejects(loadOnnxEarlyExit(empty), (e: Error) => e instanceof ManifestError && /manifest.json is missing: not an exported model folder/.test(e.message));
  fs.writeFileSync(path.join(empty, 'manifest.json'), '{"format": ');
  await assert.rejects(loadOnnxEarlyExit(empty), /not valid JSON/);

  const bad = (patch: (m: any) => void, re: RegExp) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const m = structuredClone(good);
    patch(m);
    assert.throws(() => validateManifest(m), (e: Error) => e instanceof ManifestError && re.test(e.message), re.source);
  };
  bad((m) => (m.format = 'onnx'), /format is "onnx"/);
  bad((m) => (m.version = 1), /version 1 is not supported/);
  bad((m) => m.classNames.pop(), /classNames must be 10 strings/);
  bad((m) => (m.exits[0].graph = '../etc/passwd'), /exits\[0\]\.graph must be a \.onnx file name/);
  bad((m) => (m.exits[1].kind = 'final'), /exits\[1\]\.kind must be 'ic'/);
  bad((m) => (m.ensemble = null), /ensembleParams must be null without an ensemble/);
  bad((m) => (m.ensembleParams = null), /ensembleParams must hold 3 rows/);
  bad((m) => (m.ensembleParams.weights[1] = [1]), /ensembleParams: ExitCombiner: exit 1 needs 2 member weights/);
  bad((m) => (m.ensembleParams.bias[0][3] = 'x'), /ensembleParams must hold 3 rows of finite/);
  bad((m) => (m.costs.exitCosts = [1]), /costs needs 3 exitCosts/);
  bad((m) => (m.policy = { kind: 'patience', patience: 9 }), /policy: exit policy: patience 9 exceeds the 3 exits/);
  bad((m) => (m.preprocess.std = [0]), /std \(> 0\)/);
  bad((m) => (m.inputShape = [1, 32]), /inputShape must be \[C, H, W\]/);
  bad((m) => (m.preprocess.pad = 1), /sourceShape \[1,32,32\] padded by 1 is not the inputShape/);

  // A file listed in the manifest is missing.
  const gone = tmpDir(t);
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(gone, f));
  fs.rmSync(path.join(gone, 'exit_1.onnx'));
  await assert.rejects(loadOnnxEarlyExit(gone), /model file exit_1\.onnx: .*exit_1\.onnx is missing/);
  // Files swapped: the graphs' inputs are not what the manifest says.
  const swapped = structuredClone(good);
  [swapped.exits[0].graph, swapped.exits[1].graph] = [swapped.exits[1].graph, swapped.exits[0].graph];
  const ort = nodeOrt();
  const reader = async (f: string) => new Uint8Array(fs.readFileSync(path.join(dir, f)));
  await assert.rejects(OnnxEarlyExitRuntime.load(ort, swapped, reader), /exit_1\.onnx: graph has inputs \[x,prev_logits\].*needs inputs \[x\]/);
  // Not an ONNX file at all.
  await assert.rejects(OnnxEarlyExitRuntime.load(ort, good, async (f) => (f === 'exit_0.onnx' ? new Uint8Array([1, 2, 3]) : reader(f))));

  const rt = await loadOnnxEarlyExit(dir, { threads: 1 });
  t.after(() => rt.release());
  assert.equal(readManifest(dir).exits.length, 3);
  await assert.rejects(rt.run({ data: new Float32Array(2 * 3 * 32 * 32), dims: [2, 3, 32, 32] }), /input must be \[N, 1, 32, 32\], got \[2, 3, 32, 32\]/);
  await assert.rejects(rt.run(new Float32Array(100)), /input must be \[N, 1, 32, 32\]/);
  await assert.rejects(rt.run({ data: new Float32Array(1024), dims: [2, 1, 32, 32] }), /needs 2048 values, got 1024/);
  await assert.rejects(rt.run([1, 2, 3] as unknown as Float32Array), /must be a Float32Array/);
  const nan = new Float32Array(1024);
  nan[7] = NaN;
  await assert.rejects(rt.run(nan), /contains NaN/);
  await assert.rejects(rt.run(new Float32Array(1024), { kind: 'confidence', tau: Number.NaN }), /tau must be a number/);
  await assert.rejects(rt.run(new Float32Array(1024), { kind: 'patience', patience: 0 }), /patience must be an integer >= 1/);
  await assert.rejects(rt.run(new Float32Array(1024), { kind: 'fastest' } as unknown as ExitPolicy), /unknown kind 'fastest'/);
  const ok = await rt.run(new Float32Array(1024));
  assert.equal(ok.prediction.length, 1);
  await rt.release();
  await assert.rejects(rt.run(new Float32Array(1024)), /not loaded/);
});

test('preprocessPixels pads and normalises exactly as the data loader does', () => {
  const mean = [0.2189824254493464];
  const std = [0.33162920730405127];
  const m = { inputShape: [1, 32, 32], preprocess: { scale: 1 / 255, mean, std, sourceShape: [1, 28, 28], pad: 2 } };
  const raw = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => (i * 37) % 256);
  const x = preprocessPixels(raw, m);
  assert.equal(x.length, 2 * 32 * 32);
  const lut = new Normalizer({ mean, std }, 1).lut;
  for (let n = 0; n < 2; n++)
    for (let y = 0; y < 32; y++)
      for (let xx = 0; xx < 32; xx++) {
        const inside = y >= 2 && y < 30 && xx >= 2 && xx < 30;
        const v = inside ? raw[n * 784 + (y - 2) * 28 + xx - 2] : 0;
        assert.equal(x[n * 1024 + y * 32 + xx], lut[v]);
      }
  assert.throws(() => preprocessPixels(new Uint8Array(100), m), /multiple of 784 pixels/);
  assert.throws(() => preprocessPixels(raw, { ...m, preprocess: { ...m.preprocess, pad: 0 } }), /padded by 0 is not the input/);
});
