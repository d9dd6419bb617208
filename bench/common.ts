// Shared benchmark plumbing: timing, medians, and the PyTorch side run in a
// child process (Debian's python3-torch) with the same network and batch.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { createBackbone, type Backbone } from '../src/models';
import { randn, randint, noGrad, tidy, setNumThreads, type Tensor } from '../src/tensor';
import { F } from '../src/nn';
import { SGD } from '../src/optim';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export interface BenchCase { arch: string; mode: 'train' | 'forward'; batch: number; size: number; channels: number; threads: number; iters: number; warmup: number }

/** Seconds per step of this engine, channels-last, as PyTorch's side runs it. */
export function timeZtw(c: BenchCase): number[] {
  setNumThreads(c.threads);
  const model: Backbone = createBackbone(c.arch, { numClasses: 10, inChannels: c.channels, inputSize: c.size }).toMemoryFormat('channels_last');
  const x = randn([c.batch, c.channels, c.size, c.size]).contiguous('channels_last');
  const y = randint(0, 10, [c.batch]);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  model.train(c.mode === 'train');
  const step = (): void => {
    if (c.mode === 'forward') noGrad(() => tidy(() => void model.forward(x)));
    else
      tidy(() => {
        opt.zeroGrad();
        F.crossEntropy(model.forward(x), y).backward();
        opt.step();
      });
  };
  const times: number[] = [];
  for (let i = 0; i < c.warmup + c.iters; i++) {
    const t0 = process.hrtime.bigint();
    step();
    if (i >= c.warmup) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return times;
}

export function timeTorch(c: BenchCase): number[] {
  const script = path.join(__dirname, '..', '..', 'bench', 'torch_bench.py');
  const args = [script, '--arch', c.arch, '--mode', c.mode, '--batch', String(c.batch), '--size', String(c.size), '--channels', String(c.channels), '--threads', String(c.threads), '--iters', String(c.iters), '--warmup', String(c.warmup), '--channels-last'];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch benchmark failed (is python3-torch installed?): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string).times;
}

/** Alternates the two engines for `rounds` rounds, so machine noise hits both alike. */
export function sideBySide(c: BenchCase, rounds: number): { ztw: number; pytorch: number; ratio: number } {
  const zt: number[] = [];
  const pt: number[] = [];
  for (let r = 0; r < rounds; r++) {
    zt.push(...timeZtw(c));
    pt.push(...timeTorch(c));
  }
  const ztw = c.batch / median(zt);
  const pytorch = c.batch / median(pt);
  return { ztw: round(ztw), pytorch: round(pytorch), ratio: Math.round((ztw / pytorch) * 1000) / 1000 };
}

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
export type { Tensor };
