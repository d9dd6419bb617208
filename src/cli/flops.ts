// ztw flops --arch NAME [--input 32x32x3] [--classes K] [--json]
import type { Command } from 'commander';
import { backboneCost, createBackbone } from '../models';
import { parseInputShape } from './args';

export function registerFlops(program: Command): void {
  program
    .command('flops')
    .description('cost model: multiply-adds and FLOPs per layer, per tap (cumulative) and in total')
    .requiredOption('--arch <name>', 'backbone architecture')
    .option('--input <HxWxC>', 'input size, e.g. 32x32x3 (default: the network\'s own)')
    .option('--classes <k>', 'number of classes', '10')
    .option('--layers', 'print every layer, not only the taps')
    .option('--json', 'print one JSON document')
    .action((o) => {
      const shape = o.input ? parseInputShape(o.input) : undefined;
      const model = createBackbone(o.arch, { numClasses: Number(o.classes), inChannels: shape?.[0], inputSize: shape?.[1] });
      const r = backboneCost(model, shape ?? model.inputShape);
      if (o.json) {
        console.log(JSON.stringify({ arch: r.arch, input: r.inputShape, macs: r.macs, flops: r.flops, params: model.numParameters(), taps: r.taps.map((t) => t.macs), tapFlops: r.taps.map((t) => t.flops), tapNames: r.taps.map((t) => t.name), ...(o.layers ? { layers: r.layers } : {}) }));
        return;
      }
      const M = (x: number): string => (x / 1e6).toFixed(2);
      console.log(`${r.arch} on ${r.inputShape.join('x')} (CxHxW): ${M(r.macs)} M multiply-adds, ${M(r.flops)} M FLOPs, ${(model.numParameters() / 1e6).toFixed(3)} M parameters`);
      if (o.layers) {
        console.log('\n| layer | op | output | MMACs | MFLOPs |\n|---|---|---|---|---|');
        for (const l of r.layers) console.log(`| ${l.name} | ${l.op} | ${l.outShape.slice(1).join('x')} | ${M(l.macs)} | ${M(l.flops)} |`);
      }
      console.log('\n| tap | name | cumulative MMACs | % of network |\n|---|---|---|---|');
      r.taps.forEach((t, i) => console.log(`| ${i + 1} | ${t.name} | ${M(t.macs)} | ${((100 * t.macs) / r.macs).toFixed(1)} |`));
    });
}
