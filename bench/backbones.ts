// npm run bench:backbones [-- --json] [--rounds N] [--iters N] [--archs a,b]
// Training images/s of the paper's four backbones (CIFAR layout, batch 128,
// 32x32x3, 2 threads, channels-last) for this engine and PyTorch, side by
// side, with the ratio ztw/PyTorch; PyTorch both as installed and with
// glibc malloc told to keep freed memory (REUSING_MALLOC in common.ts).
import { Command } from 'commander';
import { sideBySide, type BenchCase } from './common';

const cli = new Command()
  .option('--json', 'print one JSON document')
  .option('--rounds <n>', 'alternating rounds per network', '2')
  .option('--iters <n>', 'timed steps per round', '3')
  .option('--batch <n>', 'batch size', '128')
  .option('--threads <n>', 'threads for both engines', '2')
  .option('--archs <list>', 'networks', 'resnet56,vgg16bn,wrn32_4,mobilenet')
  .parse();
const o = cli.opts();

const results: Record<string, unknown> = {};
const rows: string[] = [];
for (const arch of String(o.archs).split(',')) {
  const c: BenchCase = { arch, mode: 'train', batch: Number(o.batch), size: 32, channels: 3, threads: Number(o.threads), iters: Number(o.iters), warmup: 1 };
  const r = sideBySide(c, Number(o.rounds));
  results[arch] = { train: r };
  rows.push(`| ${arch} | ${r.ztw} | ${r.pytorch} | ${r.ratio.toFixed(2)} | ${r.pytorchReusing} | ${r.ratioReusing.toFixed(2)} |`);
  if (!o.json) process.stderr.write(`${arch} train: ztw ${r.ztw} img/s, pytorch ${r.pytorch} img/s (${r.pytorchReusing} reusing malloc), ratio ${r.ratio} (${r.ratioReusing})\n`);
}
if (o.json) console.log(JSON.stringify(results));
else {
  console.log('| network | ztw train img/s | PyTorch train img/s | ratio | PyTorch, reusing malloc | ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}
