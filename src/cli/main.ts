// Command-line entry: `ztw <command>`. Progress goes to stderr; with --json a
// command prints exactly one JSON document on stdout.
import { Command } from 'commander';
import { registerFlops } from './flops';
import { registerTrainBackbone } from './train-backbone';
import { registerRun } from './experiment';
import { registerDemo } from './demo';
import { registerStages } from './stages';
import { registerExport } from './export';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('ztw').description('Zero Time Waste: early-exit neural networks on libtorch, from TypeScript').showHelpAfterError();
  registerDemo(program);
  registerRun(program);
  registerStages(program);
  registerFlops(program);
  registerTrainBackbone(program);
  registerExport(program);
  await program.parseAsync(argv);
}
