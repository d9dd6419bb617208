// npm run bench:engine [-- --json] [--rounds N] [--iters N]
// Images/s of ResNet-20 and ResNet-56 (CIFAR layout, batch 128, 32x32x3,
// 2 threads, channels-last), forward in eval mode and a full SGD step, for
// this engine and PyTorch, side by side, with the ratio ztw/PyTorch.
import { Command } from 'commander';
import { backboneCost, createBackbone } from '../src/models';
import { sideBySide, round, type BenchCase } from './common';

const cli = new Command()
  .option('--json', 'print one JSON document')
  .option('--rounds <n>', 'alternating rounds per case', '3')
  .option('--iters <n>', 'timed steps per round', '5')
  .option('--threads <n>', 'threads for both engines', '2')
  .parse();
const o = cli.opts();

const PEAK_GFLOPS = 228.9; // measured FP32 FMA peak of this machine on 2 cores
const results: Record<string, Record<string, unknown>> = {};
const rows: string[] = [];
for (const arch of ['resnet20', 'resnet56']) {
  const flops = backboneCost(createBackbone(arch)).flops;
  results[arch] = {};
  for (const mode of ['forward', 'train'] as const) {
    const c: BenchCase = { arch, mode, batch: 128, size: 32, channels: 3, threads: Number(o.threads), iters: Number(o.iters), warmup: 2 };
    const r = sideBySide(c, Number(o.rounds));
    // A training step costs about 3x the forward (forward + two backward products).
    const gflops = (r.ztw * flops * (mode === 'train' ? 3 : 1)) / 1e9;
    results[arch][mode] = { ...r, gflops: round(gflops), peakFraction: round(gflops / PEAK_GFLOPS, 3) };
    rows.push(`| ${arch} | ${mode} | ${r.ztw} | ${r.pytorch} | ${r.ratio.toFixed(2)} | ${round(gflops)} (${round((100 * gflops) / PEAK_GFLOPS)}%) |`);
    if (!o.json) process.stderr.write(`${arch} ${mode}: ztw ${r.ztw} img/s, pytorch ${r.pytorch} img/s, ratio ${r.ratio}\n`);
  }
}
if (o.json) console.log(JSON.stringify(results));
else {
  console.log('| network | step | ztw img/s | PyTorch img/s | ratio | ztw GFLOP/s (of 229 peak) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}
