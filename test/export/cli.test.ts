// `ztw export` on a run folder laid out as `ztw run` writes it (a ResNet-20
// with random weights stands in for a trained one), and its error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { createBackbone } from '../../src/models/registry';
import { EarlyExitNetwork } from '../../src/exits/network';
import { ExitEnsembles } from '../../src/exits/ensemble';
import { HEAD_CASCADE } from '../../src/exits/methods';
import { saveCheckpoint } from '../../src/train/checkpoint';
import { saveSafetensors } from '../../src/io/safetensors';
import { exitCostModel } from '../../src/train/pipeline';
import { manualSeed } from '../../src/tensor/create';
import { readManifest } from '../../src/runtime/onnx';
import { main } from '../../src/cli/main';
import { randomise } from './model';

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'ztw.js');

function ztw(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 90_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The command in-process (no node + libtorch start-up per case): its stdout lines, or its error. */
async function ztwHere(args: string[]): Promise<{ out: string; error?: Error }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await main(['node', 'ztw', ...args]);
    return { out: lines.join('\n') };
  } catch (e) {
    return { out: lines.join('\n'), error: e as Error };
  } finally {
    console.log = log;
  }
}

function fakeRun(dir: string): void {
  manualSeed(3);
  const backbone = createBackbone('resnet20', { numClasses: 10, inChannels: 1, inputSize: 32 });
  const net = new EarlyExitNetwork(backbone, { cascade: HEAD_CASCADE.ztw });
  randomise(net, 8);
  net.eval();
  const ens = new ExitEnsembles({ numExits: net.numExits, numClasses: 10, kind: 'geometric' });
  const seedDir = path.join(dir, 'seed0');
  fs.mkdirSync(seedDir, { recursive: true });
  saveCheckpoint(path.join(seedDir, 'heads-ztw.ckpt.safetensors'), { modules: { net }, progress: { epoch: 1, history: [] } });
  saveSafetensors(path.join(seedDir, 'ensemble-ztw.safetensors'), ens.stateDict());
  const entries = [0.25, 0.5, 0.75, 1].map((b, i) => ({ budget: b, param: 0.6 + 0.1 * i, accuracy: 50, costFraction: b }));
  fs.writeFileSync(path.join(seedDir, 'result.json'), JSON.stringify({ seed: 0, baseAccuracy: 10, methods: { ztw: { paper: { rule: 'confidence', mode: 'paper', entries, max: entries[3] }, heldout: null } }, costs: { ztw: exitCostModel(net, ens) } }));
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify({ meta: { arch: 'resnet20', data: 'fashion-mnist' } }));
  net.dispose();
  ens.dispose();
}

test('ztw export: a run folder to ONNX + manifest + samples, checked against libtorch', { timeout: 120_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-cli-export-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const run = path.join(tmp, 'run');
  const out = path.join(tmp, 'onnx');
  fakeRun(run);

  const r = await ztw(['export', '--run', run, '--out', out, '--check-samples', '48', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.exits, 10);
  assert.deepEqual(j.policy, { kind: 'confidence', tau: 0.7 }, 'the run\'s threshold for the 50% budget');
  assert.ok(j.check.maxProbDiff < 1e-4, `check: ${j.check.maxProbDiff}`);
  assert.deepEqual(j.check.decisions.unexplained, []);
  assert.equal(j.check.samples, 48);
  assert.ok(j.files.includes('samples.json') && j.files.includes('manifest.json') && j.files.includes('exit_8.onnx'));
  assert.ok(j.files.includes('early-exit.onnx') && j.files.includes('early-exit-1.onnx'), 'the one-graph models');
  const m = readManifest(out);
  assert.equal(m.arch, 'resnet20');
  assert.equal(m.method, 'ztw');
  assert.deepEqual(m.inputShape, [1, 32, 32]);
  assert.deepEqual(m.preprocess.sourceShape, [1, 28, 28]);
  assert.equal(m.preprocess.pad, 2);
  assert.ok(Math.abs(m.preprocess.mean[0] - 0.219) < 0.01 && Math.abs(m.preprocess.std[0] - 0.332) < 0.01, JSON.stringify(m.preprocess));
  assert.equal(m.classNames[0], 'T-shirt/top');
  assert.equal((m.info as { check: { samples: number } }).check.samples, 48);
  const samples = JSON.parse(fs.readFileSync(path.join(out, 'samples.json'), 'utf8'));
  assert.equal(samples.samples.length, 20);
  assert.equal(Buffer.from(samples.samples[0].pixels, 'base64').length, 784);

  // Explicit policies, human-readable output.
  const r2 = await ztwHere(['export', '--run', run, '--out', path.join(tmp, 'onnx2'), '--tau', '0.8', '--no-verify', '--no-data', '--input', '32x32x1', '--no-fused']);
  assert.equal(r2.error, undefined);
  assert.match(r2.out, /wrote \d+ files to .*: 10 exits \(resnet20, ztw, geometric ensemble\)/);
  assert.match(r2.out, /confidence > tau 0\.8/);
  assert.match(r2.out, /ztw serve-demo --model/);
  assert.deepEqual(readManifest(path.join(tmp, 'onnx2')).classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.equal(readManifest(path.join(tmp, 'onnx2')).fused, null, '--no-fused');
  assert.ok(!fs.existsSync(path.join(tmp, 'onnx2', 'early-exit.onnx')));
});

test('ztw export error paths', { timeout: 30_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-cli-export-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const out = path.join(tmp, 'o');
  const cases: [string[], RegExp][] = [
    [['export', '--run', path.join(tmp, 'nope'), '--out', out], /run folder .*nope does not exist/],
    [['export', '--run', tmp, '--out', out], /--arch is needed/],
    [['export', '--run', tmp, '--out', out, '--arch', 'resnet20', '--no-data'], /heads checkpoint of ztw .*heads-ztw\.ckpt\.safetensors is missing \(no folder/],
    [['export', '--run', tmp, '--out', out, '--method', 'fastest'], /unknown method 'fastest'/],
    [['export', '--run', tmp, '--out', out, '--tau', '0.5', '--patience', '2'], /--tau or --patience, not both/],
    [['export', '--run', tmp, '--out', out, '--tau', 'x'], /--tau: expected a number/],
    [['export', '--run', tmp, '--out', out, '--seed', '-1'], /--seed: expected an integer >= 0/],
    [['serve-demo', '--model', tmp, '--port', '0'], /manifest\.json is missing/],
    [['serve-demo', '--model', tmp, '--host', '192.168.1.1'], /loopback/],
  ];
  const check = async (args: string[], re: RegExp): Promise<void> => {
    const r = await ztwHere(args);
    assert.ok(r.error, `${args.join(' ')} should fail`);
    assert.match(r.error.message, re, args.join(' '));
  };
  for (const [args, re] of cases) await check(args, re);
  fs.mkdirSync(path.join(tmp, 'seed0'));
  fs.writeFileSync(path.join(tmp, 'seed0', 'heads-sdn.ckpt.safetensors'), '');
  await check(['export', '--run', tmp, '--out', out, '--arch', 'resnet20', '--no-data'], /heads-ztw\.ckpt\.safetensors is missing \(.*seed0 has: heads-sdn\.ckpt\.safetensors\)/);
  assert.ok(!fs.existsSync(out), 'nothing written on failure');
});
