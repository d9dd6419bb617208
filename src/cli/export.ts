// ztw export: a trained early-exit model as ONNX graphs (per exit, and the one-graph models) + manifest.
// ztw serve-demo: the browser demo on an exported model (loopback only).
import type { Command } from 'commander';
import * as path from 'node:path';
import { exportRun } from '../export/from-run';
import { startDemoServer } from '../export/serve';
import type { ExitPolicy } from '../runtime/policy';
import { parseInputShape, positiveInt } from './args';

function parsePolicy(o: { tau?: string; patience?: string }): ExitPolicy | undefined {
  if (o.tau !== undefined && o.patience !== undefined) throw new Error('give --tau or --patience, not both');
  if (o.tau !== undefined) {
    const tau = Number(o.tau);
    if (!Number.isFinite(tau) || tau < 0) throw new Error(`--tau: expected a number >= 0, got '${o.tau}'`);
    return { kind: 'confidence', tau };
  }
  if (o.patience !== undefined) return { kind: 'patience', patience: positiveInt('--patience', o.patience) };
  return undefined;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a trained early-exit model (a `ztw run`/`ztw demo` folder) as ONNX graphs, one per exit and one-graph models of the whole network, with a manifest; checked against libtorch')
    .requiredOption('--run <dir>', 'run folder (the --out of ztw run / ztw demo)')
    .requiredOption('--out <dir>', 'folder for the ONNX files and manifest.json')
    .option('--seed <n>', 'which seed of the run', '0')
    .option('--method <name>', 'method: ztw, sdn, pbee, or an ablation', 'ztw')
    .option('--arch <name>', 'backbone (default: from the run\'s results.json)')
    .option('--data <name>', 'data set for class names, normalisation and check images (default: from results.json)')
    .option('--no-data', 'no data set: class indices as names, no normalisation, random check inputs')
    .option('--root <dir>', 'data location (CIFAR, Tiny ImageNet, imagefolder)')
    .option('--input <HxWxC>', 'input size when there is no data set')
    .option('--tau <x>', 'confidence threshold recorded in the manifest')
    .option('--patience <n>', 'patience recorded in the manifest (PBEE)')
    .option('--budget <fraction>', 'use the threshold the run chose for this budget, e.g. 0.5 (default when the run has results)')
    .option('--check-samples <n>', 'test images (or random inputs) for the comparison with libtorch', '256')
    .option('--no-verify', 'skip the comparison with libtorch')
    .option('--no-fused', 'skip the one-graph models (early-exit.onnx, early-exit-1.onnx): the runtimes then run exit by exit')
    .option('--json', 'print one JSON document')
    .action(async (o) => {
      const policy = parsePolicy(o);
      if (policy && o.budget !== undefined) throw new Error('give --budget or --tau/--patience, not both');
      const budget = o.budget === undefined ? undefined : Number(o.budget);
      if (budget !== undefined && !(budget > 0)) throw new Error(`--budget: expected a fraction > 0, got '${o.budget}'`);
      const shape = o.input ? parseInputShape(o.input) : undefined;
      const seed = Number(o.seed);
      if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: expected an integer >= 0, got '${o.seed}'`);
      const r = await exportRun({
        runDir: o.run, outDir: o.out, seed, method: o.method, arch: o.arch,
        data: o.data === false ? false : o.data, root: o.root, inputShape: shape, policy, budget, verify: o.verify, fused: o.fused, verifySamples: positiveInt('--check-samples', o.checkSamples),
        log: o.json ? undefined : (s) => process.stderr.write(s + '\n'),
      });
      const m = r.manifest;
      if (o.json) {
        console.log(JSON.stringify({ dir: path.resolve(r.dir), files: r.files.map((f) => path.basename(f)), exits: m.exits.length, policy: m.policy, costs: m.costs, check: r.check && { samples: r.check.samples, maxProbDiff: r.check.maxProbDiff, decisions: r.check.decisions, ms: r.check.ms } }));
        return;
      }
      console.log(`wrote ${r.files.length} files to ${r.dir}: ${m.exits.length} exits (${m.arch}, ${m.method}${m.ensemble ? `, ${m.ensemble} ensemble` : ''}), opset ${m.opset}`);
      console.log(`policy: ${m.policy.kind === 'confidence' ? `confidence > tau ${m.policy.tau}` : `patience ${m.policy.patience}`}`);
      console.log(`exit costs (% of the backbone): ${m.costs.exitCosts.map((c) => ((100 * c) / m.costs.baseCost).toFixed(1)).join(' ')}`);
      if (r.check)
        console.log(`check on ${r.check.samples} samples: max |p_onnx - p_libtorch| ${r.check.maxProbDiff.toExponential(2)}; same exit and answer for ${r.check.decisions.agree}/${r.check.samples} (${r.check.decisions.nearThreshold} differ at the threshold); libtorch ${r.check.ms.libtorch.toFixed(0)} ms, onnxruntime ${r.check.ms.onnx.toFixed(0)} ms`);
      console.log(`try it: ztw serve-demo --model ${r.dir}`);
    });

  program
    .command('serve-demo')
    .description('serve the browser demo (web/) on an exported model, on 127.0.0.1')
    .requiredOption('--model <dir>', 'exported model folder (ztw export --out)')
    .option('--port <n>', 'port (0: any free one)', '8080')
    .option('--host <addr>', 'loopback address to listen on', '127.0.0.1')
    .action(async (o) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected 0..65535, got '${o.port}'`);
      const s = await startDemoServer({ modelDir: o.model, port, host: o.host });
      console.log(`demo at ${s.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void s.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
