// The command line end to end, as users run it: `ztw train-backbone` killed
// after its first checkpoint and resumed (same weights as an uninterrupted
// run), then `ztw run` on those weights (JSON, report files, reuse of finished
// stages), and clear errors for bad input. Tests in this file run in order and
// share the uninterrupted run's weights.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadSafetensors } from '../../src/io/safetensors';
import { dispose } from '../../src/tensor/scope';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'ztw.js');
// One intra-op thread: deterministic reductions, and no OpenMP contention on a shared 2-core machine.
const ENV = { ...process.env, ZTW_QUIET: '1', ZTW_THREADS: '1' };
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-cli-'));
after(() => fs.rmSync(WORK, { recursive: true, force: true }));

const ztw = (args: string[]): SpawnSyncReturns<string> => spawnSync(process.execPath, [BIN, ...args], { cwd: WORK, env: ENV, encoding: 'utf8', timeout: 300_000 });

// MNIST (8,571 digits, 1,000 of them carved for validation): the same pipeline as Fashion-MNIST,
// with a 7x smaller evaluation pass after every epoch, which dominates these tiny runs.
const TRAIN = ['train-backbone', '--data', 'mnist', '--arch', 'resnet20', '--train-subset', '256', '--epochs', '3', '--batch', '64'];
const reference = path.join(WORK, 'uninterrupted');
const weights = path.join(reference, 'backbone.safetensors');

function tensorsOf(file: string): Map<string, number[]> {
  const { tensors } = loadSafetensors(file);
  const out = new Map([...tensors].map(([k, t]) => [k, t.toNumbers()]));
  dispose([...tensors.values()]);
  return out;
}

test('train-backbone killed right after its first checkpoint and resumed ends with the weights of an uninterrupted run', async () => {
  const full = ztw([...TRAIN, '--out', reference, '--json']);
  assert.equal(full.status, 0, full.stderr);
  const summaryA = JSON.parse(full.stdout);
  assert.equal(summaryA.history.length, 3);
  assert.deepEqual(summaryA.recipe.milestones, [1, 2]);

  // A second run, killed (SIGKILL: no cleanup) as soon as the first checkpoint appears.
  const killedDir = path.join(WORK, 'killed');
  const ckpt = path.join(killedDir, 'checkpoint.safetensors');
  const child = spawn(process.execPath, [BIN, ...TRAIN, '--out', killedDir], { cwd: WORK, env: ENV, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let finished = false;
  void exited.then(() => (finished = true));
  const t0 = Date.now();
  while (!fs.existsSync(ckpt) && !finished && Date.now() - t0 < 240_000) await new Promise((r) => setTimeout(r, 20));
  assert.ok(fs.existsSync(ckpt), 'the first checkpoint appeared');
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL', 'the run was killed, it did not finish');
  assert.ok(!fs.existsSync(path.join(killedDir, 'backbone.safetensors')), 'killed before the end');
  const progress = JSON.parse(loadSafetensorsMetadata(ckpt).progress);
  assert.ok(progress.epoch >= 1 && progress.epoch < 3, `checkpoint after epoch ${progress.epoch}`);

  const resumed = ztw([...TRAIN, '--out', killedDir, '--resume', '--json']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resumed resnet20 from .* after epoch ${progress.epoch}`));
  const summaryB = JSON.parse(resumed.stdout);

  // Same weights, bit for bit (data order, augmentation and dropout are functions of seed and epoch).
  const a = tensorsOf(weights);
  const b = tensorsOf(path.join(killedDir, 'backbone.safetensors'));
  assert.deepEqual([...b.keys()], [...a.keys()]);
  const differing: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k)!;
    const maxDiff = v.reduce((m, x, i) => Math.max(m, Math.abs(x - w[i])), 0);
    if (maxDiff > 0) differing.push(`${k} (max |diff| ${maxDiff})`);
  }
  assert.deepEqual(differing, [], 'resumed weights differ from the uninterrupted run');
  assert.ok(fs.readFileSync(weights).equals(fs.readFileSync(path.join(killedDir, 'backbone.safetensors'))), 'identical files');
  assert.equal(summaryB.testAccuracy, summaryA.testAccuracy);
  assert.deepEqual(
    summaryB.history.map((h: { loss: number; valAcc: number; lr: number }) => [h.loss, h.valAcc, h.lr]),
    summaryA.history.map((h: { loss: number; valAcc: number; lr: number }) => [h.loss, h.valAcc, h.lr]),
  );
});

function loadSafetensorsMetadata(file: string): Record<string, string> {
  const { tensors, metadata } = loadSafetensors(file);
  dispose([...tensors.values()]);
  return metadata;
}

const RUN = ['run', '--data', 'mnist', '--arch', 'resnet20', '--backbone', weights, '--seeds', '2', '--ic-epochs', '1', '--ensemble-epochs', '5', '--train-subset', '500', '--eval-subset', '300', '--json'];

test('`ztw run` end to end on the trained weights: one JSON document, report files; a rerun reuses every stage', () => {
  assert.ok(fs.existsSync(weights), 'needs the weights of the first test');
  const out = path.join(WORK, 'run');
  const t0 = Date.now();
  const first = ztw([...RUN, '--out', out]);
  const firstMs = Date.now() - t0;
  assert.equal(first.status, 0, first.stderr);
  const doc = JSON.parse(first.stdout); // exactly one JSON document on stdout
  const budgetRow = (row: unknown, what: string): void => {
    assert.ok(Array.isArray(row) && row.length === 5, `${what}: 5 entries (25/50/75/100%, Max)`);
    for (const v of row as unknown[]) assert.ok(v === null || (typeof v === 'number' && v >= 0 && v <= 100), `${what}: ${v}`);
  };
  for (const mode of ['paper', 'heldout'])
    for (const m of ['sdn', 'pbee', 'ztw']) budgetRow(doc.budgets[mode][m], `budgets.${mode}.${m}`);
  // Max is the best accuracy of the sweep: no budget entry exceeds it.
  for (const m of ['sdn', 'pbee', 'ztw']) {
    const row = doc.budgets.paper[m] as (number | null)[];
    assert.equal(typeof row[4], 'number');
    for (const v of row.slice(0, 4)) if (v !== null) assert.ok(v <= (row[4] as number) + 1e-9, `${m}: ${v} <= max ${row[4]}`);
  }
  assert.equal(typeof doc.base, 'number');
  assert.ok(doc.base >= 0 && doc.base <= 100);
  assert.deepEqual(doc.seeds, [0, 1]);
  assert.deepEqual(Object.keys(doc.hi).sort(), ['sdn', 'ztw'], 'HI for the confidence-exit methods');
  for (const m of ['sdn', 'ztw']) {
    assert.equal(doc.hi[m].length, 10, `${m}: one HI per exit (9 ICs + the backbone)`);
    assert.equal(doc.hi[m][0], 0, 'HI of the first head is 0');
    assert.ok(doc.hi[m].every((h: number) => h >= 0 && h <= 100));
  }
  assert.equal(doc.hiChance.length, 10);
  assert.equal(doc.meta.arch, 'resnet20');
  for (const f of ['report.html', 'report.md', 'results.json', 'curves.svg', 'curves.png', 'hindsight.svg', 'hindsight.png']) assert.ok(fs.statSync(path.join(out, f)).size > 100, `${f} written`);
  assert.deepEqual([...fs.readFileSync(path.join(out, 'curves.png')).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  assert.match(fs.readFileSync(path.join(out, 'curves.svg'), 'utf8'), /<svg[\s>]/);
  assert.match(fs.readFileSync(path.join(out, 'report.html'), 'utf8'), /<html/i);
  for (const s of [0, 1]) assert.ok(fs.existsSync(path.join(out, `seed${s}`, 'result.json')));

  // The same command again: every stage is reused, the numbers are the same.
  const t1 = Date.now();
  const again = ztw([...RUN, '--out', out]);
  const againMs = Date.now() - t1;
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /seed 0: results exist/);
  assert.match(again.stderr, /seed 1: results exist/);
  assert.doesNotMatch(again.stderr, /heads \(|training .* ensembles/, 'nothing is trained again');
  const doc2 = JSON.parse(again.stdout);
  delete doc.meta.minutes;
  delete doc2.meta.minutes;
  assert.deepEqual(doc2, doc);
  assert.ok(againMs < firstMs / 2, `rerun ${againMs} ms vs first run ${firstMs} ms`);
});

test('ztw-heldout: ZTW with its ensembles fit on half of the validation images, on the same heads', () => {
  const out = path.join(WORK, 'run');
  assert.ok(fs.existsSync(path.join(out, 'seed0', 'heads-ztw.ckpt.safetensors')), 'needs the heads of the previous test');
  const r = ztw([...RUN.map((a) => (a === '2' ? '1' : a)), '--out', out, '--methods', 'ztw,ztw-heldout']);
  assert.equal(r.status, 0, r.stderr);
  // 300 validation images: 150 fit the ensembles, for as many steps as 5 epochs over the 500 training images (one batch each).
  assert.match(r.stderr, /training geometric ensembles for ztw-heldout \(5 epochs on 150 held-out validation images\)/);
  assert.match(r.stderr, /resumed IC training from .* after epoch 1\n/, 'the heads are reused');
  assert.doesNotMatch(r.stderr, /ensembles for ztw \(/, 'the reference ensembles are reused');
  const doc = JSON.parse(r.stdout);
  for (const mode of ['paper', 'heldout']) assert.equal(doc.budgets[mode]['ztw-heldout'].length, 5);
  const a = tensorsOf(path.join(out, 'seed0', 'ensemble-ztw.safetensors'));
  const b = tensorsOf(path.join(out, 'seed0', 'ensemble-ztw-heldout.safetensors'));
  assert.notDeepEqual(b.get('bias'), a.get('bias'), 'fit on other data');
});

const expectError = (r: SpawnSyncReturns<string>, pattern: RegExp): void => {
  assert.notEqual(r.status, 0, `exit status ${r.status}; stderr: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.equal(r.stdout, '', 'nothing on stdout');
};

test('bad input: clear messages and a non-zero exit', () => {
  const out = ['--out', path.join(WORK, 'bad')];
  expectError(ztw(['run', '--arch', 'resnet999', '--seeds', '1', ...out]), /^ztw: unknown architecture 'resnet999' \(known: .*resnet56.*\)/m);
  expectError(ztw(['run', '--methods', 'sdn,fastest', '--seeds', '1', ...out]), /^ztw: unknown method 'fastest' \(known: .*ztw.*\)/m);
  expectError(ztw(['run', '--data', 'cifar11', '--seeds', '1', ...out]), /^ztw: unknown dataset 'cifar11'; known: fashion-mnist/m);
  expectError(ztw(['run', '--seeds', 'abc', ...out]), /^ztw: --seeds: expected a positive integer, got 'abc'/m);
  expectError(ztw(['run', '--data', 'mnist', '--arch', 'resnet56', '--backbone', weights, '--seeds', '1', ...out]), /holds a resnet20, not a resnet56/);
  expectError(ztw(['run', '--data', 'fashion-mnist', '--arch', 'resnet20', '--backbone', weights, '--seeds', '1', ...out]), /was trained on mnist, not fashion-mnist/);
  expectError(ztw(['train-backbone', '--arch', 'resnet20', '--epochs', 'two', ...out]), /^ztw: --epochs: expected a positive integer, got 'two'/m);
  assert.ok(!fs.existsSync(path.join(WORK, 'runs')), 'no output written to the default location');
});
