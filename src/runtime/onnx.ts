// The ONNX early-exit runtime in Node: reads an exported model folder
// (manifest.json, one .onnx file per stage and the one-graph models) and runs it with
// onnxruntime-node's CPU provider. The algorithm is in onnx-core.ts, shared
// with the browser demo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManifestError, OnnxEarlyExitRuntime, validateManifest, type EarlyExitManifest, type FusedChoice, type OrtModuleLike } from './onnx-core';

export * from './onnx-core';

export interface LoadOnnxOptions {
  /** The onnxruntime module (default: require('onnxruntime-node')). */
  ort?: OrtModuleLike;
  /** Intra-op threads per session (default: ZTW_THREADS or the core count). */
  threads?: number;
  /** Extra session options, merged over the defaults. */
  sessionOptions?: Record<string, unknown>;
  /** Run through the model's one-graph files when it has them (default true); 'single': only the one-image graph; false: one session per exit. */
  fused?: FusedChoice;
}

/** The onnxruntime-node module, with a clear error when it is not installed. */
export function nodeOrt(): OrtModuleLike {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('onnxruntime-node') as OrtModuleLike;
  } catch (e) {
    throw new Error(`onnxruntime-node is not installed or does not load (npm install onnxruntime-node --onnxruntime-node-install=skip): ${(e as Error).message}`);
  }
}

/** Reads and validates dir/manifest.json. */
export function readManifest(dir: string): EarlyExitManifest {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(dir)) throw new ManifestError(`model folder ${dir} does not exist`);
  if (!fs.existsSync(file)) throw new ManifestError(`${file} is missing: not an exported model folder (make one with \`ztw export\`)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ManifestError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  try {
    return validateManifest(parsed);
  } catch (e) {
    throw new ManifestError(`${file}: ${(e as Error).message}`);
  }
}

/** Opens an exported model folder for early-exit inference. */
export async function loadOnnxEarlyExit(dir: string, o: LoadOnnxOptions = {}): Promise<OnnxEarlyExitRuntime> {
  const manifest = readManifest(dir);
  const ort = o.ort ?? nodeOrt();
  const threads = o.threads ?? (Number(process.env.ZTW_THREADS) || os.availableParallelism?.() || os.cpus().length);
  // No spinning: the stages run one after another, each in its own session
  // with its own pool, and pools spinning after their stage starve the next
  // (measured at 2 threads, batch 1: 415 ms per image with spinning, 18 without).
  const noSpin = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  const sessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, extra: noSpin, ...o.sessionOptions };
  return OnnxEarlyExitRuntime.load(ort, manifest, async (f) => {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw new Error(`${p} is missing (listed in the manifest)`);
    return new Uint8Array(fs.readFileSync(p));
  }, sessionOptions, o.fused ?? true);
}
