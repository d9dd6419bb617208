// `ztw export`: a run folder of `ztw run` / `ztw demo` (seed<s>/heads-<kind>.ckpt.safetensors
// with the backbone and the heads, seed<s>/ensemble-<method>.safetensors,
// seed<s>/result.json with the costs and the chosen thresholds) to an ONNX
// model folder, checked against libtorch before it is declared done.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadDataset, type LoadedDataset } from '../data/registry';
import { createBackbone } from '../models/registry';
import { EarlyExitNetwork } from '../exits/network';
import { ExitEnsembles } from '../exits/ensemble';
import { HEAD_CASCADE, methodSpec } from '../exits/methods';
import type { CostModel } from '../eval/types';
import { loadSafetensors } from '../io/safetensors';
import { loadCheckpoint } from '../train/checkpoint';
import { randn, tensor } from '../tensor/create';
import { dispose } from '../tensor/scope';
import { writeFileAtomic } from '../util/atomic';
import { exportEarlyExit, MANIFEST_FILE } from './export';
import { demoSamples } from './samples';
import { verifyAgainstLibtorch, type VerifyReport } from './verify';
import { loadOnnxEarlyExit, preprocessPixels, type EarlyExitManifest, type ExitPolicy, type Preprocess } from '../runtime/onnx';

/** Zero padding the loaders add around each image (28x28 -> 32x32). */
const DATA_PAD: Record<string, number> = { 'fashion-mnist': 2, mnist: 2 };

export interface RunExportOptions {
  runDir: string;
  outDir: string;
  seed?: number;
  method?: string;
  /** Default: results.json's meta.arch. */
  arch?: string;
  /** Data set (class names, normalisation, check images); default results.json's meta.data; false: none. */
  data?: string | false;
  root?: string;
  /** [C, H, W] when there is no data set. */
  inputShape?: number[];
  policy?: ExitPolicy;
  /** Take the threshold the run chose for this budget (fraction of the base cost; held-out table when there is one). */
  budget?: number;
  /** Compare with libtorch after writing (default true); a mismatch fails the export. */
  verify?: boolean;
  /** Also write the one-graph models (default true). */
  fused?: boolean;
  verifySamples?: number;
  samplesPerClass?: number;
  log?: (s: string) => void;
}

export interface RunExportResult {
  dir: string;
  manifest: EarlyExitManifest;
  files: string[];
  check: VerifyReport | null;
}

function readJson(file: string): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

function need(file: string, what: string): string {
  if (!fs.existsSync(file)) {
    const dir = path.dirname(file);
    const have = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors') || f.endsWith('.json')) : null;
    throw new Error(`${what} ${file} is missing${have ? ` (${dir} has: ${have.join(', ') || 'nothing'})` : ` (no folder ${dir})`}`);
  }
  return file;
}

export async function exportRun(o: RunExportOptions): Promise<RunExportResult> {
  const log = o.log ?? (() => undefined);
  const seed = o.seed ?? 0;
  const method = o.method ?? 'ztw';
  const spec = methodSpec(method);
  if (!fs.existsSync(o.runDir)) throw new Error(`run folder ${o.runDir} does not exist`);
  const resultsFile = path.join(o.runDir, 'results.json');
  const meta = fs.existsSync(resultsFile) ? readJson(resultsFile).meta ?? {} : {};
  const arch: string | undefined = o.arch ?? meta.arch;
  if (!arch) throw new Error(`--arch is needed: ${resultsFile} is missing or does not name it`);
  const dataName: string | null = o.data === false ? null : o.data ?? meta.data ?? null;
  const seedDir = path.join(o.runDir, `seed${seed}`);
  const ckpt = need(path.join(seedDir, `heads-${spec.heads}.ckpt.safetensors`), `heads checkpoint of ${method}`);
  const ensFile = spec.ensemble ? need(path.join(seedDir, `ensemble-${method}.safetensors`), `ensemble of ${method}`) : null;
  const seedResultFile = path.join(seedDir, 'result.json');
  const seedResult = fs.existsSync(seedResultFile) ? readJson(seedResultFile) : null;

  let data: LoadedDataset | null = null;
  if (dataName) {
    log(`loading ${dataName} (class names, normalisation, check images)`);
    data = await loadDataset(dataName, { root: o.root, silent: true });
  }
  const { tensors } = loadSafetensors(ckpt);
  const headW = tensors.get('net.heads.0.fc.weight');
  const K = data?.numClasses ?? headW?.shape[0];
  dispose([...tensors.values()]);
  if (!K) throw new Error(`${ckpt}: no net.heads.0.fc.weight; not a heads checkpoint`);
  const shape = data ? data.inputShape : o.inputShape;
  if (!shape) throw new Error('the input shape is needed (--input) when no data set is given');
  const backbone = createBackbone(arch, { numClasses: K, inChannels: shape[0], inputSize: shape[1] });
  const net = new EarlyExitNetwork(backbone, { cascade: HEAD_CASCADE[spec.heads] });
  loadCheckpoint(ckpt, { modules: { net } });
  net.eval();
  let ensembles: ExitEnsembles | null = null;
  if (spec.ensemble && ensFile) {
    ensembles = new ExitEnsembles({ numExits: net.numExits, numClasses: K, kind: spec.ensemble });
    const e = loadSafetensors(ensFile).tensors;
    ensembles.loadStateDict(e);
    dispose([...e.values()]);
  }
  const costs: CostModel | undefined = seedResult?.costs?.[method];

  let policy = o.policy;
  if (!policy) {
    const budget = o.budget ?? (seedResult ? 0.5 : undefined);
    const ev = seedResult?.methods?.[method];
    if (budget !== undefined) {
      if (!ev) throw new Error(`--budget: ${seedResultFile} has no evaluation of ${method}`);
      const table = ev.heldout ?? ev.paper;
      const entry = table.entries.find((e: { budget: number | null }) => e.budget !== null && Math.abs(e.budget - budget) < 1e-9);
      if (!entry || entry.param === null) throw new Error(`--budget ${budget}: the run chose no threshold for it (budgets: ${table.entries.map((e: { budget: number }) => e.budget).join(', ')})`);
      policy = spec.rule === 'confidence' ? { kind: 'confidence', tau: entry.param } : { kind: 'patience', patience: entry.param };
      log(`budget ${budget * 100}%: ${spec.rule === 'confidence' ? `tau ${entry.param}` : `patience ${entry.param}`} (${table.mode ?? 'paper'} table)`);
    } else policy = spec.rule === 'confidence' ? { kind: 'confidence', tau: 0.9 } : { kind: 'patience', patience: 2 };
  }

  const pad = dataName ? DATA_PAD[dataName] ?? 0 : 0;
  const [C, H, W] = shape;
  const preprocess: Partial<Preprocess> = data ? { scale: 1 / 255, mean: data.norm.mean, std: data.norm.std, sourceShape: [C, H - 2 * pad, W - 2 * pad], pad } : {};
  log(`tracing ${arch} with ${net.heads.length} ICs${ensembles ? ` and ${ensembles.kind} ensembles` : ''}`);
  const r = exportEarlyExit({
    net, ensembles, outDir: o.outDir, costs, policy, preprocess, method, fused: o.fused,
    classNames: data?.classNames,
    info: { run: path.resolve(o.runDir), seed, data: dataName, checkpoint: path.basename(ckpt), ensembleFile: ensFile && path.basename(ensFile) },
  });
  if (data) {
    const samples = demoSamples(data.test, { pad, perClass: o.samplesPerClass ?? 2 });
    const f = path.join(o.outDir, 'samples.json');
    writeFileAtomic(f, JSON.stringify(samples));
    r.files.splice(r.files.length - 1, 0, f);
  }

  let check: VerifyReport | null = null;
  if (o.verify !== false) {
    const n = Math.min(o.verifySamples ?? 256, data ? data.test.n : Infinity);
    let x = randn([n, C, H, W]);
    if (data) {
      // Evenly spread over the test split (it is ordered by class).
      const per = C * H * W;
      const stride = Math.floor(data.test.n / n);
      const pixels = new Uint8Array(n * per);
      for (let i = 0; i < n; i++) pixels.set(data.test.images.subarray(i * stride * per, (i * stride + 1) * per), i * per);
      x.dispose();
      x = tensor(preprocessPixels(pixels, { inputShape: shape, preprocess: { ...(preprocess as Preprocess), sourceShape: shape, pad: 0 } }), [n, C, H, W]);
    }
    log(`checking against libtorch on ${n} ${data ? 'test images' : 'random inputs'}`);
    const rt = await loadOnnxEarlyExit(o.outDir);
    try {
      check = await verifyAgainstLibtorch(rt, net, ensembles, r.manifest.costs, x, policy);
    } finally {
      await rt.release();
      x.dispose();
    }
    r.manifest.info = { ...r.manifest.info, check: { samples: check.samples, maxProbDiff: check.maxProbDiff, sameDecisions: check.decisions.agree, nearThreshold: check.decisions.nearThreshold } };
    writeFileAtomic(path.join(o.outDir, MANIFEST_FILE), JSON.stringify(r.manifest, null, 1) + '\n');
    if (check.maxProbDiff > 1e-4 || check.decisions.unexplained.length)
      throw new Error(`export check failed: max probability difference ${check.maxProbDiff.toExponential(2)} (limit 1e-4), ${check.decisions.unexplained.length} decisions differ away from the threshold`);
  }
  net.dispose();
  ensembles?.dispose();
  return { dir: o.outDir, manifest: r.manifest, files: r.files, check };
}
