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

/**
 * glibc malloc settings that keep freed memory for reuse rather than giving
 * it back to the kernel: PyTorch's CPU allocator takes every activation from
 * malloc, and with glibc's defaults on this project's machine freed maps went
 * back to the kernel and their pages faulted in again at the next op
 * (ResNet-56 forward at batch 128, seed 0: ~320 img/s with the defaults,
 * ~1,150 with these, in alternating processes; a profile showed each 8 MB
 * ReLU taking ~0.8 ms). ztw's caching allocator keeps its blocks itself, so
 * the benchmarks time PyTorch both ways.
 */
export const REUSING_MALLOC: Record<string, string> = { MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '17179869184', MALLOC_TOP_PAD_: '268435456' };

/** Seconds per step of Debian's PyTorch on the same case, in a child process (with extra environment variables). */
export function timeTorch(c: BenchCase, env: Record<string, string> = {}): number[] {
  const script = path.join(__dirname, '..', '..', 'bench', 'torch_bench.py');
  const args = [script, '--arch', c.arch, '--mode', c.mode, '--batch', String(c.batch), '--size', String(c.size), '--channels', String(c.channels), '--threads', String(c.threads), '--iters', String(c.iters), '--warmup', String(c.warmup), '--channels-last'];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`PyTorch benchmark failed (is python3-torch installed?): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string).times;
}

export interface SideBySide {
  /** Images/s of ztw, of PyTorch as installed, and of PyTorch with REUSING_MALLOC. */
  ztw: number;
  pytorch: number;
  pytorchReusing: number;
  /** ztw over each PyTorch figure (> 1: ztw is faster). */
  ratio: number;
  ratioReusing: number;
}

/** Alternates the engines for `rounds` rounds, so machine noise hits all alike. */
export function sideBySide(c: BenchCase, rounds: number): SideBySide {
  const zt: number[] = [];
  const pt: number[] = [];
  const pr: number[] = [];
  for (let r = 0; r < rounds; r++) {
    zt.push(...timeZtw(c));
    pt.push(...timeTorch(c));
    pr.push(...timeTorch(c, REUSING_MALLOC));
  }
  const ztw = c.batch / median(zt);
  const pytorch = c.batch / median(pt);
  const pytorchReusing = c.batch / median(pr);
  const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
  return { ztw: round(ztw), pytorch: round(pytorch), pytorchReusing: round(pytorchReusing), ratio: ratio(ztw, pytorch), ratioReusing: ratio(ztw, pytorchReusing) };
}

export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
export type { Tensor };
