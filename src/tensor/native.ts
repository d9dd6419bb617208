// Loads the libtorch addon once and wires its error class and thread count.
import * as os from 'node:os';
import * as path from 'node:path';
import { TorchError } from './errors';

/**
 * The id of one at::Tensor in the addon's handle table (native/src/handle.h):
 * a BigInt, which V8 collects without any per-tensor callback. Ids are never
 * reused, so a disposed tensor's id stays disposed.
 */
export type NativeHandle = bigint;

// The op table is generated in C++ (native/src/ops_*.cc); its entries are
// called positionally by the typed wrappers in tensor.ts and nn/functional.ts.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, (...args: any[]) => any>;

function load(): NativeAddon {
  const root = path.resolve(__dirname, '..', '..', '..');
  const candidates = [path.join(root, 'build', 'Release', 'ztw_native.node'), path.join(root, 'build', 'Debug', 'ztw_native.node')];
  let lastError: unknown;
  for (const file of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      return require(file) as NativeAddon;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(
    `ztw: the native engine is not built (looked for ${candidates[0]}). ` +
      `Run \`npm run build:native\` after installing libtorch-dev. Cause: ${(lastError as Error)?.message}`,
  );
}

export const native: NativeAddon = load();
native.setErrorClass(TorchError);

/** Intra-op threads for libtorch; defaults to ZTW_THREADS or the core count. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/**
 * The machine's FP32 FMA peak in GFLOP/s on the current threads, measured
 * (best of `rounds` ~20 ms runs of independent FMA chains, the widest
 * vectors the CPU has): what benchmarks divide by to say how close a
 * kernel comes.
 */
export function fmaPeak(rounds = 5): { gflops: number; isa: string; threads: number; workers: number } {
  const { gflops, isa, threads, workers } = native.fmaPeak(rounds) as { gflops: number; isa: string; threads: number; workers: number };
  return { gflops, isa, threads, workers };
}
/** OpenBLAS's threads: 1 unless OPENBLAS_NUM_THREADS says otherwise (see native/src/addon.cc); -1 under another BLAS. */
export function blasThreads(): number {
  return native.blasThreads();
}
setNumThreads(Number(process.env.ZTW_THREADS) || os.availableParallelism?.() || os.cpus().length);
