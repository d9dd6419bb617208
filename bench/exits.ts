// npm run bench:exits [-- --json] [--run DIR] [--method ztw]
// Measured, not assumed: for several thresholds, the mean cost fraction from
// the cost model against the measured wall-clock fraction of the plain
// backbone, at batch 1 and batch 128, with accuracy. Uses a trained model
// from an experiment directory (default: the demo's).
import { Command } from 'commander';
import * as path from 'node:path';
import { loadDataset, subset, BatchLoader } from '../src/data';
import { loadTrainedModel } from '../src/exits';
import { EarlyExitRuntime, type ExitResult } from '../src/runtime/early-exit';
import { exitCostModel } from '../src/train/pipeline';
import { batchTensors } from '../src/train/batches';
import { noGrad, tidy, setNumThreads, type Tensor } from '../src/tensor';
import { median, round } from './common';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { EarlyExitNetwork } from '../src/exits';
import { releaseTaps } from '../src/models/backbone';
import type { StagedForward } from '../src/models/backbone';
import { exportEarlyExit } from '../src/export/export';
import { loadOnnxEarlyExit } from '../src/runtime/onnx';

/**
 * Seconds per round of every configuration (0: the plain backbone). Within a
 * round the configurations take turns on each slice of the data (a slice is
 * a few tens of milliseconds of work), in an order that rotates from slice to
 * slice: this shared machine has slow phases of seconds, and turns of a whole
 * pass each (as before) let one land on a single configuration and moved the
 * batch-1 ratio by +-0.03 between runs. Round 0 is warm-up.
 */
async function interleavedTimes(configs: number, rounds: number, slices: number, runOnce: (config: number, slice: number) => void | Promise<void>): Promise<number[][]> {
  const times: number[][] = Array.from({ length: configs }, () => []);
  for (let r = 0; r <= rounds; r++) {
    const spent = new Array<number>(configs).fill(0);
    for (let s = 0; s < slices; s++)
      for (let k = 0; k < configs; k++) {
        const c = (k + s) % configs;
        const t0 = process.hrtime.bigint();
        await runOnce(c, s);
        spent[c] += Number(process.hrtime.bigint() - t0) / 1e9;
      }
    if (r > 0) spent.forEach((t, c) => times[c].push(t));
  }
  return times;
}

/** The batches of slice s of `slices` (contiguous, as even as the count allows). */
const sliceOf = <T>(items: T[], slices: number, s: number): T[] => items.slice(Math.floor((s * items.length) / slices), Math.floor(((s + 1) * items.length) / slices));

/** The median over rounds of config's time against the plain backbone's in the same round. */
function timeFraction(times: number[][], config: number): { fraction: number; plain: number; t: number } {
  return { fraction: median(times[config].map((t, r) => t / times[0][r])), plain: median(times[0]), t: median(times[config]) };
}

interface Tally {
  cost: number;
  correct: number;
  histogram: number[];
}
const newTally = (numExits: number): Tally => ({ cost: 0, correct: 0, histogram: new Array<number>(numExits).fill(0) });

/** Adds one batch's answers (either runtime's) to a tally. */
function tally(t: Tally, r: ExitResult, labels: ArrayLike<number>): void {
  r.cost.forEach((c) => (t.cost += c));
  r.prediction.forEach((p, i) => (t.correct += p === labels[i] ? 1 : 0));
  r.exitIndex.forEach((m) => t.histogram[m]++);
}

/** One row of the table: a runtime at one threshold, its answers over n samples and its time against its plain backbone. */
function tableRow(runtime: string, batch: number, tau: number, t: Tally, n: number, baseCost: number, times: number[][], config: number): Record<string, number | string> {
  const { fraction, plain, t: spent } = timeFraction(times, config);
  return { runtime, batch, tau, cost_fraction: round(t.cost / n / baseCost, 3), time_fraction: round(fraction, 3), accuracy: round((100 * t.correct) / n, 2), plain_ms_per_sample: round((1000 * plain) / n, 3), exit_ms_per_sample: round((1000 * spent) / n, 3) };
}

/**
 * Runs fn with timers around every backbone step and every head of net, the
 * runtime itself untouched (instance methods wrapped, then removed): where an
 * early-exit pass spends its time. Seconds.
 */
function timeSections(net: EarlyExitNetwork, fn: () => void): { backbone: number; heads: number; total: number } {
  const now = (): number => Number(process.hrtime.bigint()) / 1e9;
  const spent = { backbone: 0, heads: 0, total: 0 };
  const bb = net.backbone;
  const staged = bb.staged;
  bb.staged = function* (x: Tensor): StagedForward {
    const gen = staged.call(bb, x);
    let sent: Tensor | undefined;
    for (;;) {
      const t0 = now();
      const r = gen.next(sent);
      spent.backbone += now() - t0;
      if (r.done) return r.value;
      sent = yield r.value;
    }
  };
  for (const h of net.heads) {
    const step = h.exitStep;
    h.exitStep = (...args) => {
      const t0 = now();
      const out = step.apply(h, args);
      spent.heads += now() - t0;
      return out;
    };
  }
  try {
    const t0 = now();
    fn();
    spent.total = now() - t0;
  } finally {
    delete (bb as Partial<typeof bb>).staged;
    for (const h of net.heads) delete (h as Partial<typeof h>).exitStep;
  }
  return spent;
}

/**
 * Every backbone step (steps[i] ends at tap i, the last at the logits) and
 * every head of net, timed in plain passes at this batch size with each
 * head run on its tap as the runtime runs them: ms per batch, the median
 * over rounds. What an early exit would cost with no runtime overhead and
 * every stage at the full batch.
 */
function segmentTimes(net: EarlyExitNetwork, batches: Tensor[], rounds: number): { steps: number[]; heads: number[] } {
  const now = (): number => Number(process.hrtime.bigint()) / 1e6;
  const T = net.backbone.taps.length;
  const steps: number[][] = Array.from({ length: T + 1 }, () => []);
  const heads: number[][] = net.heads.map(() => []);
  const room = new Float32Array(Math.max(...batches.map((x) => x.shape[0])) * net.backbone.numClasses); // the runtime's memory for each head's answer
  for (let r = 0; r <= rounds; r++) {
    const s = new Array<number>(T + 1).fill(0);
    const h = new Array<number>(net.heads.length).fill(0);
    for (const x of batches)
      noGrad(() =>
        tidy(() => {
          const gen = releaseTaps(net.backbone.staged(x));
          let prev: Tensor | undefined;
          let t0 = now();
          for (let i = 0, res = gen.next(); ; i++, res = gen.next()) {
            s[i] += now() - t0;
            if (res.done) break;
            const m = net.tapIndices.indexOf(i);
            if (m >= 0) {
              const t1 = now();
              const out = net.heads[m].exitStep(res.value, m > 0 ? prev : undefined, room);
              h[m] += now() - t1;
              prev?.dispose();
              prev = out.logits;
            }
            t0 = now();
          }
          prev?.dispose();
        }),
      );
    if (r === 0) continue; // warm-up
    s.forEach((v, i) => steps[i].push(v / batches.length));
    h.forEach((v, m) => heads[m].push(v / batches.length));
  }
  return { steps: steps.map(median), heads: heads.map(median) };
}

/**
 * The time fraction segmentTimes predicts for an exit histogram (counts per
 * exit): over the backbone steps of the same passes, so that a slower or
 * faster phase of this shared machine cancels out.
 */
function segmentFraction(net: EarlyExitNetwork, seg: { steps: number[]; heads: number[] }, histogram: number[]): number {
  const plain = seg.steps.reduce((a, b) => a + b, 0);
  const n = histogram.reduce((a, b) => a + b, 0);
  let t = 0;
  histogram.forEach((count, m) => {
    const lastStep = m < net.heads.length ? net.tapIndices[m] : seg.steps.length - 1;
    const spent = seg.steps.slice(0, lastStep + 1).reduce((a, b) => a + b, 0) + seg.heads.slice(0, Math.min(m + 1, seg.heads.length)).reduce((a, b) => a + b, 0);
    t += count * spent;
  });
  return t / n / plain;
}

const cli = new Command()
  .option('--json', 'print one JSON document')
  .option('--run <dir>', 'experiment directory with seed0/', path.join('runs', 'demo'))
  .option('--backbone <file>', 'backbone weights', path.join('models', 'fashion-mnist-resnet56', 'backbone.safetensors'))
  .option('--arch <name>', 'backbone', 'resnet56')
  .option('--method <name>', 'sdn | ztw', 'ztw')
  .option('--taus <list>', 'thresholds', '0.5,0.8,0.9,0.95,0.99,0.999')
  .option('--samples <n>', 'test samples for batch 128', '1024')
  .option('--samples1 <n>', 'test samples for batch 1', '512')
  .option('--batches <list>', 'batch sizes', '1,128')
  .option('--threads <n>', 'threads', '2')
  .option('--repeats <n>', 'timed repeats (median)', '3')
  .option('--no-onnx', 'skip the onnxruntime rows')
  .option('--onnx-staged', 'also time the onnxruntime runtime with one session per exit (rows "onnxruntime-staged")')
  .option('--breakdown', 'also time the backbone steps and the heads inside the libtorch runtime (ms per sample), and the segment-time fraction (the time a runtime with no overhead would take)')
  .parse();
const o = cli.opts();

(async () => {
  setNumThreads(Number(o.threads));
  if (!fs.existsSync(path.join(o.run, 'seed0'))) {
    console.error(`bench:exits: no trained model in ${o.run}/seed0. Run \`npm run demo\` first (it writes runs/demo), or pass --run DIR of a \`ztw run\` experiment (with --arch and --backbone).`);
    process.exit(2);
  }
  const data = await loadDataset('fashion-mnist', { silent: true });
  const { net, ensembles } = loadTrainedModel({ arch: o.arch, numClasses: data.numClasses, inputShape: data.inputShape, backbone: o.backbone, seedDir: path.join(o.run, 'seed0'), method: o.method });
  const costs = exitCostModel(net, ensembles);
  const runtime = new EarlyExitRuntime(net, ensembles, costs);
  const rows: Record<string, number | string>[] = [];
  for (const batch of String(o.batches).split(',').map(Number)) {
    const n = Number(batch === 1 ? o.samples1 : o.samples);
    const ds = subset(data.test, n, 5);
    const loader = new BatchLoader(ds, { batchSize: batch, shuffle: false, norm: data.norm });
    const batches: { x: Tensor; y: Int32Array }[] = [...loader.epoch(0)].map((b) => ({ x: batchTensors(b, 'channels_last').x.keep(), y: b.y }));
    const taus = String(o.taus).split(',').map(Number);
    // Slices of ~32 images at batch 1, one batch each at 128.
    const slices = Math.max(1, Math.min(batches.length, Math.round(n / Math.max(batch, 32))));
    const times = await interleavedTimes(taus.length + 1, Number(o.repeats), slices, (c, s) => {
      for (const b of sliceOf(batches, slices, s)) tidy(() => (c === 0 ? noGrad(() => void net.backbone.forward(b.x)) : void runtime.run(b.x, { kind: 'confidence', tau: taus[c - 1] })));
    });
    const seg = o.breakdown ? segmentTimes(net, batches.map((b) => b.x), Number(o.repeats)) : undefined;
    for (const [k, tau] of taus.entries()) {
      const answers = newTally(runtime.numExits);
      for (const b of batches) tidy(() => tally(answers, runtime.run(b.x, { kind: 'confidence', tau }), b.y));
      const row = tableRow('libtorch', batch, tau, answers, n, costs.baseCost, times, k + 1);
      if (o.breakdown) {
        const s = timeSections(net, () => batches.forEach((b) => tidy(() => void runtime.run(b.x, { kind: 'confidence', tau }))));
        const ms = (v: number): number => round((1000 * v) / n, 3);
        Object.assign(row, { backbone_ms_per_sample: ms(s.backbone), heads_ms_per_sample: ms(s.heads), other_ms_per_sample: ms(s.total - s.backbone - s.heads) });
        if (seg) row.segment_time_fraction = round(segmentFraction(net, seg, answers.histogram), 3);
      }
      rows.push(row);
      if (!o.json) process.stderr.write(`batch ${batch} tau ${tau}: cost ${row.cost_fraction}, time ${row.time_fraction}, acc ${row.accuracy}%\n`);
    }
    if (o.onnx) {
      // The same model exported to ONNX, run by onnxruntime-node; its plain
      // backbone is the same backbone exported without heads.
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-bench-onnx-'));
      exportEarlyExit({ net, ensembles, outDir: path.join(tmp, 'exits'), costs });
      exportEarlyExit({ net: new EarlyExitNetwork(net.backbone, { taps: [] }), outDir: path.join(tmp, 'plain'), fused: false });
      // The one-graph models (the default), and on request one session per exit.
      const variants = [{ name: 'onnxruntime', fused: true }, ...(o.onnxStaged ? [{ name: 'onnxruntime-staged', fused: false }] : [])];
      const ortExits = await Promise.all(variants.map((v) => loadOnnxEarlyExit(path.join(tmp, 'exits'), { threads: Number(o.threads), fused: v.fused })));
      const ortPlain = await loadOnnxEarlyExit(path.join(tmp, 'plain'), { threads: Number(o.threads), fused: false });
      const inputs = batches.map((b) => ({ data: b.x.data() as Float32Array, dims: b.x.shape, y: b.y }));
      const ortTimes = await interleavedTimes(variants.length * taus.length + 1, Number(o.repeats), slices, async (c, s) => {
        const rt = ortExits[Math.floor((c - 1) / taus.length)];
        for (const i of sliceOf(inputs, slices, s)) await (c === 0 ? ortPlain.run(i, { kind: 'confidence', tau: 2 }) : rt.run(i, { kind: 'confidence', tau: taus[(c - 1) % taus.length] }));
      });
      for (const [v, variant] of variants.entries())
        for (const [k, tau] of taus.entries()) {
          const answers = newTally(runtime.numExits);
          for (const i of inputs) tally(answers, await ortExits[v].run(i, { kind: 'confidence', tau }), i.y);
          const row = tableRow(variant.name, batch, tau, answers, n, costs.baseCost, ortTimes, v * taus.length + k + 1);
          rows.push(row);
          if (!o.json) process.stderr.write(`${variant.name} batch ${batch} tau ${tau}: cost ${row.cost_fraction}, time ${row.time_fraction}, acc ${row.accuracy}%\n`);
        }
      await Promise.all([...ortExits, ortPlain].map((r) => r.release()));
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    for (const b of batches) b.x.dispose();
  }
  if (o.json) console.log(JSON.stringify({ model: { arch: o.arch, method: o.method, run: o.run }, rows }));
  else {
    console.log('| runtime | batch | tau | cost fraction | time fraction | accuracy % | plain ms/sample | early-exit ms/sample |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.runtime} | ${r.batch} | ${r.tau} | ${r.cost_fraction} | ${r.time_fraction} | ${r.accuracy} | ${r.plain_ms_per_sample} | ${r.exit_ms_per_sample} |`);
    if (o.breakdown) {
      console.log('\nWhere the libtorch early-exit time goes (ms per sample; other: ensembles, rule, row bookkeeping, JS). Segment-time fraction: the time');
      console.log('fraction that each backbone step\'s and head\'s measured plain time at the full batch predicts for this run\'s exits, with no runtime overhead:\n');
      console.log('| batch | tau | backbone steps | heads | other | plain backbone | cost fraction | segment-time fraction | time fraction |');
      console.log('|---|---|---|---|---|---|---|---|---|');
      for (const r of rows.filter((x) => x.backbone_ms_per_sample !== undefined))
        console.log(`| ${r.batch} | ${r.tau} | ${r.backbone_ms_per_sample} | ${r.heads_ms_per_sample} | ${r.other_ms_per_sample} | ${r.plain_ms_per_sample} | ${r.cost_fraction} | ${r.segment_time_fraction} | ${r.time_fraction} |`);
    }
  }
})();
