// Export round trips: every stage graph, run by onnxruntime-node, equals the
// libtorch network it was traced from (probabilities within 1e-4), for
// folded conv-BN (ResNet), standalone BN and dropout (WRN), cascades or
// none, the three ensembles, tap subsets, channels-last weights and any
// batch size; and the tracer refuses what it cannot export exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyNetwork, FASHION_CLASSES } from './model';
import { exportEarlyExit } from '../../src/export/export';
import { decodeModel, encodeModel } from '../../src/export/onnx-proto';
import { ExportError, withTracer, type Tracer } from '../../src/export/tracer';
import type { Tensor } from '../../src/tensor/tensor';
import { libtorchExitProbs } from '../../src/export/verify';
import { loadOnnxEarlyExit } from '../../src/runtime/onnx';
import { native } from '../../src/tensor/native';
import * as F from '../../src/nn/functional';
import { randn, tensor } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import type { EnsembleKind } from '../../src/exits/ensemble';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-export-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const maxDiff = (a: Float32Array[], b: Float32Array[]): number => Math.max(...a.map((x, m) => x.reduce((d, v, i) => Math.max(d, Math.abs(v - b[m][i])), 0)));

async function roundTrip(t: { after: (fn: () => void) => void }, o: Parameters<typeof tinyNetwork>[0], batches = [1, 5]) {
  const dir = tmpDir(t);
  const { net, ensembles } = tinyNetwork(o);
  const r = exportEarlyExit({ net, ensembles, outDir: dir, classNames: FASHION_CLASSES });
  const rt = await loadOnnxEarlyExit(dir, { threads: 1 });
  t.after(() => rt.release());
  for (const n of batches) {
    const x = randn([n, 1, 32, 32]);
    const ref = libtorchExitProbs(net, ensembles, x);
    const got = await rt.allExits(x.data() as Float32Array);
    assert.equal(got.length, net.numExits);
    const d = maxDiff(got, ref);
    assert.ok(d < 1e-4, `${JSON.stringify(o)} batch ${n}: max |p_onnx - p_libtorch| = ${d}`);
    x.dispose();
  }
  return { dir, manifest: r.manifest, net, ensembles, files: r.files };
}

test('ResNet with folded conv-BN, cascade and geometric ensembles: ONNX equals libtorch at any batch size', async (t) => {
  const { dir, manifest, files } = await roundTrip(t, { channelsLast: true, ensemble: 'geometric' }, [1, 5, 16]);
  const M = manifest.exits.length;
  assert.equal(M, 4);
  assert.deepEqual(manifest.stages.map((s) => s.file), ['exit_0.onnx', 'exit_1.onnx', 'exit_2.onnx', 'exit_3.onnx']);
  assert.equal(path.basename(files[files.length - 1]), 'manifest.json');
  assert.deepEqual(manifest.exits.map((e) => e.tap), [0, 1, 2, null]);
  assert.deepEqual(manifest.exits.map((e) => e.usesPreviousLogits), [false, true, true, false]);
  assert.equal(manifest.ensemble, 'geometric');
  assert.deepEqual(manifest.ensembleParams?.weights.map((w) => w.length), [1, 2, 3, 4], 'exit m has m + 1 member weights');
  assert.ok(manifest.ensembleParams?.bias.every((b) => b?.length === 10));
  assert.equal(manifest.classNames[9], 'Ankle boot');
  assert.ok(manifest.exits.every((e, m) => m === 0 || e.cost > manifest.exits[m - 1].cost), 'costs grow with the exit');
  for (const s of manifest.stages) {
    const g = decodeModel(fs.readFileSync(path.join(dir, s.file)));
    assert.equal(g.opset, manifest.opset);
    assert.deepEqual(g.graph.inputs.map((v) => v.name), s.inputs);
    assert.ok(g.graph.inputs.every((v) => v.shape[0] === 'N'), `${s.file}: symbolic batch`);
    const ops = g.graph.nodes.map((n) => n.op);
    assert.ok(!ops.includes('BatchNormalization'), `${s.file}: BN folded into the convolutions`);
    assert.ok(ops.includes('Gemm') && ops.includes('LogSoftmax'), `${s.file}: ends in a classifier`);
    assert.ok(!ops.includes('Identity'), `${s.file}: outputs written by the nodes that compute them (an Identity is a copy in onnxruntime)`);
    const produced = new Set(g.graph.nodes.flatMap((n) => n.outputs));
    assert.ok(g.graph.outputs.every((v) => produced.has(v.name)), `${s.file}: every output has a producer`);
    if (s.exit === M - 1) assert.ok(ops.includes('GlobalAveragePool'), s.file);
    else assert.ok(ops.includes('Conv') && ops.includes('MaxPool') && ops.includes('AveragePool'), `${s.file}: a segment and the head's conv and SDN pooling`);
  }
  const exit1 = decodeModel(fs.readFileSync(path.join(dir, 'exit_1.onnx'))).graph;
  assert.deepEqual(exit1.inputs.map((v) => v.name), ['x', 'prev_logits']);
  assert.deepEqual(exit1.outputs.map((v) => v.name), ['features', 'logits', 'log_probs']);
  assert.deepEqual(decodeModel(fs.readFileSync(path.join(dir, 'exit_3.onnx'))).graph.outputs.map((v) => v.name), ['logits', 'log_probs']);
  const exit0 = decodeModel(fs.readFileSync(path.join(dir, 'exit_0.onnx')));
  assert.deepEqual(exit0.graph.outputs[0].shape, ['N', 16, 32, 32]);
});

test('WRN (standalone BN, dropout), a subset of taps, SDN heads without ensemble', async (t) => {
  const { dir, manifest } = await roundTrip(t, { arch: 'wrn8', taps: [0, 2], cascade: false, ensemble: null });
  assert.equal(manifest.exits.length, 3);
  assert.deepEqual(manifest.exits.map((e) => e.tap), [0, 2, null]);
  assert.equal(manifest.ensemble, null);
  assert.equal(manifest.ensembleParams, null);
  assert.ok(manifest.exits.every((e) => !e.usesPreviousLogits));
  const ops = decodeModel(fs.readFileSync(path.join(dir, 'exit_2.onnx'))).graph.nodes.map((n) => n.op);
  assert.ok(ops.includes('BatchNormalization'), 'the pre-activation BN has no conv to fold into');
});

for (const kind of ['additive', 'mean'] as EnsembleKind[])
  test(`${kind} ensembles: ONNX equals libtorch`, async (t) => {
    const { manifest } = await roundTrip(t, { ensemble: kind, seed: 5 }, [3]);
    assert.equal(manifest.ensemble, kind);
  });

test('export refuses mismatched parts and bad options', (t) => {
  const dir = tmpDir(t);
  const { net, ensembles } = tinyNetwork({ taps: [1] });
  const other = tinyNetwork().ensembles;
  assert.throws(() => exportEarlyExit({ net, ensembles: other, outDir: dir }), /ensembles cover 4 exits .* the network has 2/);
  assert.throws(() => exportEarlyExit({ net, ensembles, outDir: dir, policy: { kind: 'confidence', tau: -1 } }), /tau must be/);
  assert.throws(() => exportEarlyExit({ net, ensembles, outDir: dir, policy: { kind: 'patience', patience: 3 } }), /exceeds the 2 exits/);
  assert.throws(() => exportEarlyExit({ net, ensembles, outDir: dir, classNames: ['a'] }), /1 class names for 10 classes/);
  assert.throws(() => exportEarlyExit({ net, ensembles, outDir: dir, traceBatch: 1 }), /traceBatch/);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing written');
});

/** One graph traced from an input of the given shape; body declares its outputs. */
function traceOne(name: string, shape: number[], body: (tr: Tracer, x: Tensor) => void) {
  return noGrad(() =>
    tidy(() =>
      withTracer(new Map(), (tr) => {
        tr.beginGraph(name);
        const x = randn(shape);
        tr.input('x', x);
        body(tr, x);
        return tr.endGraph();
      }),
    ),
  );
}

/** The graph written to a temporary file and opened in onnxruntime-node. */
async function ortSession(t: { after: (fn: () => void) => void }, g: ReturnType<typeof traceOne>) {
  const file = path.join(tmpDir(t), `${g.name}.onnx`);
  fs.writeFileSync(file, encodeModel(g, { opset: 17 }));
  return require('onnxruntime-node').InferenceSession.create(file);
}

test('the tracer fails loudly on what it cannot export, and always restores the op table', () => {
  const add = native.add;
  const conv = native.conv2d;
  const trace = (fn: (x: Tensor) => Tensor) => traceOne('g', [2, 4], (tr, x) => tr.output('y', fn(x)));
  assert.throws(() => trace((x) => F.dropout(x, 0.5, true)), (e: Error) => e instanceof ExportError && /dropout in training mode/.test(e.message));
  assert.throws(() => trace((x) => (x.sum().item() > 0 ? x : x.neg())), /reads the data of a traced tensor/);
  assert.throws(() => trace((x) => x.sort(1).values), /op 'sort' has no ONNX export rule/);
  assert.throws(() => trace((x) => x.add_(1)), /in-place op 'add_'/);
  assert.throws(() => trace((x) => x.view(8)), /does not keep the batch dimension/);
  assert.throws(() => trace((x) => x.narrow(0, 0, 1)), /along the batch dimension/);
  assert.throws(() => trace(() => tensor([[1, 2]])), /does not depend on the graph's inputs/);
  assert.throws(() => trace((x) => x.sum(0, true)), /lost the batch dimension/);
  const w = randn([3, 3, 3, 3]);
  assert.throws(() => traceOne('g', [2, 3, 4, 4], (tr, x) => tr.output('y', F.conv2dFused(x, w, undefined, { padding: 1 }, { reluInput: true }))), (e: Error) => e instanceof ExportError && /ReLU in place/.test(e.message));
  // A value of an earlier graph read without being an input: directly, through an
  // alias, or through ops run between two graphs.
  type T = ReturnType<typeof randn>;
  const crossGraph = (first: (x: T) => T, between: (h: T) => T): void =>
    void noGrad(() =>
      tidy(() =>
        withTracer(new Map(), (tr) => {
          tr.beginGraph('a');
          const x = randn([2, 4]);
          tr.input('x', x);
          const h = first(x);
          tr.output('h', h);
          tr.endGraph();
          const later = between(h);
          tr.beginGraph('b');
          const z = randn([2, 4]);
          tr.input('z', z);
          tr.output('y', z.add(later));
        }),
      ),
    );
  assert.throws(() => crossGraph((x) => x.relu(), (h) => h), /reads 'a\/relu_\d+', a value of an earlier graph/);
  for (const between of [(h: T) => h.detach(), (h: T) => h.mul(2)])
    assert.throws(() => crossGraph((x) => x.relu().detach(), between), /a value of an earlier graph that is not an input/);
  // BN in training mode (batch statistics).
  assert.throws(() => trace((x) => F.batchNorm(x.view(2, 4, 1, 1), { training: true }).flatten(1)), /batch norm in training mode/);
  assert.equal(native.add, add);
  assert.equal(native.conv2d, conv);
});

test('graph outputs: a computed value is written under its output name, an input or a repeated output through an Identity', async (t) => {
  const ort = require('onnxruntime-node');
  const g = traceOne('outs', [2, 4], (tr, x) => {
    const h = x.relu();
    tr.output('h', h); // renamed, and still read by the next node
    tr.output('h_again', h);
    tr.output('x_out', x);
    tr.output('y', h.mul(3));
  });
  assert.deepEqual(g.nodes.map((n) => n.op), ['Relu', 'Identity', 'Identity', 'Mul']);
  assert.deepEqual(g.nodes[0].outputs, ['h']);
  assert.deepEqual(g.nodes[3].inputs[0], 'h', 'the consumer reads the renamed value');
  const s = await ortSession(t, g);
  const x = Float32Array.from([-1, 2, -3, 4, 5, -6, 7, -8]);
  const out = await s.run({ x: new ort.Tensor('float32', x, [2, 4]) });
  const relu = Array.from(x, (v) => Math.max(v, 0));
  assert.deepEqual(Array.from(out.h.data as Float32Array), relu);
  assert.deepEqual(Array.from(out.h_again.data as Float32Array), relu);
  assert.deepEqual(Array.from(out.x_out.data as Float32Array), Array.from(x));
  assert.deepEqual(Array.from(out.y.data as Float32Array), relu.map((v) => 3 * v));
});

test('a traced graph that is fine at batch 2 also runs at batch 1 and 7 (symbolic batch in reshapes)', async (t) => {
  // view(N, -1) and flatten(1) inside a custom stage: the batch stays symbolic.
  const ort = require('onnxruntime-node');
  const g = traceOne('reshape', [2, 3, 4, 4], (tr, x) => tr.output('y', x.view(2, 3, 16).permute(0, 2, 1).flatten(1).softmax(1).mul(2).sub(x.mean([1, 2, 3], true).flatten(1))));
  const s = await ortSession(t, g);
  for (const n of [1, 7]) {
    const x = randn([n, 3, 4, 4]);
    const want = noGrad(() => x.view(n, 3, 16).permute(0, 2, 1).flatten(1).softmax(1).mul(2).sub(x.mean([1, 2, 3], true).flatten(1)).data() as Float32Array);
    const got = (await s.run({ x: new ort.Tensor('float32', x.data() as Float32Array, [n, 3, 4, 4]) })).y;
    assert.deepEqual(got.dims, [n, 48]);
    const d = (got.data as Float32Array).reduce((m: number, v: number, i: number) => Math.max(m, Math.abs(v - want[i])), 0);
    assert.ok(d < 1e-5, `batch ${n}: ${d}`);
  }
});
