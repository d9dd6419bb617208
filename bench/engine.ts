// npm run bench:engine [-- --json] [--rounds N] [--iters N]
// Images/s of ResNet-20 and ResNet-56 (CIFAR layout, batch 128, 32x32x3,
// 2 threads, channels-last), forward in eval mode and a full SGD step, for
// this engine and PyTorch, side by side, with the ratio ztw/PyTorch; PyTorch
// both as installed and with glibc malloc told to keep freed memory
// (REUSING_MALLOC in common.ts: with the defaults its pages fault in again).
import { Command } from 'commander';
import { backboneCost, createBackbone } from '../src/models';
import { fmaPeak, setNumThreads } from '../src/tensor';
import { sideBySide, round, type BenchCase } from './common';

const cli = new Command()
  .option('--json', 'print one JSON document')
  .option('--rounds <n>', 'alternating rounds per case', '3')
  .option('--iters <n>', 'timed steps per round', '5')
  .option('--threads <n>', 'threads for both engines', '2')
  .option('--latency', 'also time the forward at batch 1 (inference latency), where libtorch 1.13 leaves oneDNN')
  .parse();
const o = cli.opts();

// The FP32 FMA peak on these threads, measured in this run (engine-facts.md's
// 229 GFLOP/s on 2 cores was not it: these cores run two AVX-512 FMAs a
// cycle, and forward passes reached 160-179% of that figure).
setNumThreads(Number(o.threads));
const peak = fmaPeak();
const PEAK_GFLOPS = round(peak.gflops);
if (!o.json) process.stderr.write(`FP32 FMA peak (${peak.isa}, ${peak.threads} threads): ${PEAK_GFLOPS} GFLOP/s\n`);
const results: Record<string, Record<string, unknown>> = {};
const rows: string[] = [];
for (const arch of ['resnet20', 'resnet56']) {
  const flops = backboneCost(createBackbone(arch)).flops;
  results[arch] = {};
  const cases: { mode: 'forward' | 'train'; batch: number }[] = [{ mode: 'forward', batch: 128 }, { mode: 'train', batch: 128 }, ...(o.latency ? [{ mode: 'forward' as const, batch: 1 }] : [])];
  for (const { mode, batch } of cases) {
    // Batch 1 steps are short: more of them for a stable median.
    const c: BenchCase = { arch, mode, batch, size: 32, channels: 3, threads: Number(o.threads), iters: Number(o.iters) * (batch === 1 ? 40 : 1), warmup: batch === 1 ? 10 : 2 };
    const r = sideBySide(c, Number(o.rounds));
    // A training step costs about 3x the forward (forward + two backward products).
    const gflops = (r.ztw * flops * (mode === 'train' ? 3 : 1)) / 1e9;
    const name = batch === 128 ? mode : `${mode} (batch ${batch})`;
    results[arch][name] = { ...r, gflops: round(gflops), peakFraction: round(gflops / PEAK_GFLOPS, 3) };
    rows.push(`| ${arch} | ${name} | ${r.ztw} | ${r.pytorch} | ${r.ratio.toFixed(2)} | ${r.pytorchReusing} | ${r.ratioReusing.toFixed(2)} | ${round(gflops)} (${round((100 * gflops) / PEAK_GFLOPS)}%) |`);
    if (!o.json) process.stderr.write(`${arch} ${name}: ztw ${r.ztw} img/s, pytorch ${r.pytorch} img/s (${r.pytorchReusing} reusing malloc), ratio ${r.ratio} (${r.ratioReusing})\n`);
  }
}
if (o.json) console.log(JSON.stringify({ ...results, peak: { gflops: PEAK_GFLOPS, isa: peak.isa, threads: peak.threads } }));
else {
  console.log(`| network | step | ztw img/s | PyTorch img/s | ratio | PyTorch, reusing malloc | ratio | ztw GFLOP/s (of ${PEAK_GFLOPS} peak) |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}
