// Early-exit inference over exported ONNX graphs, for any onnxruntime build:
// the caller passes the `ort` module (onnxruntime-node in Node,
// onnxruntime-web in a browser) and a file reader. Same algorithm as the
// libtorch runtime (src/runtime/early-exit.ts): the batch runs exit by exit
// (one graph each: backbone segment + head); after each exit the ensemble
// (in JS, exits/combine.ts) and the rule decide, the samples that leave are
// answered, and only the rest are carried on.
//
// This file's only runtime import is exits/combine.ts, itself import-free:
// the demo server hands both, compiled, to the browser as one ES module.
import type { ExitResult } from './early-exit';
import type { ExitPolicy } from './policy';
import { checkMemberRows, ExitCombiner, type CombineKind } from '../exits/combine';

export type { ExitResult, ExitPolicy };

export const MANIFEST_FORMAT = 'ztw-early-exit-onnx';
export const MANIFEST_VERSION = 2;

export interface ManifestExit {
  /** 0-based exit index; the last one is the backbone's classifier. */
  index: number;
  kind: 'ic' | 'final';
  /** Backbone tap index (ICs only). */
  tap: number | null;
  tapName: string | null;
  /** Cost model: FLOPs of one sample that leaves here (backbone so far + heads so far + ensemble). */
  cost: number;
  /** Graph: `x` (the image, or the previous exit's features) [+ `prev_logits`] -> [`features` (ICs),] `logits`, `log_probs`. */
  graph: string;
  usesPreviousLogits: boolean;
}

/** The ensembles as numbers (see ExitCombinerSpec): per exit m, m + 1 member weights and K biases (none for the mean). */
export interface ManifestEnsembleParams {
  weights: number[][];
  bias: (number[] | null)[];
}

export interface ManifestStage {
  file: string;
  kind: 'exit';
  exit: number;
  inputs: string[];
  outputs: string[];
}

/**
 * The whole model in one graph per input shape, for one rule: inputs x and
 * tau (confidence) or patience; outputs prediction, probs, exit_index.
 */
export interface ManifestFused {
  rule: 'confidence' | 'patience';
  /** Any batch. */
  batch: string;
  /** One sample ([1, C, H, W]): no row bookkeeping. */
  single: string;
}

export interface Preprocess {
  /** Multiply raw pixels by this (1/255: pixels 0..255 to [0, 1]). */
  scale: number;
  /** Per-channel mean and std of the scaled pixels; input = (pixel * scale - mean) / std. */
  mean: number[];
  std: number[];
  /** Raw images are [C, h, w] of this shape and zero-padded (raw value 0) by `pad` on each side to the input shape. */
  sourceShape: number[];
  pad: number;
}

export interface EarlyExitManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  opset: number;
  arch: string;
  /** Method name (ztw, sdn, pbee, ...) when known. */
  method: string | null;
  ensemble: 'geometric' | 'additive' | 'mean' | null;
  /** The ensembles' weights (when there is an ensemble). */
  ensembleParams: ManifestEnsembleParams | null;
  numClasses: number;
  classNames: string[];
  /** One sample's input: [C, H, W]. */
  inputShape: number[];
  preprocess: Preprocess;
  /** The exit rule the model was exported for (callers may pass another). */
  policy: ExitPolicy;
  costs: { unit: string; exitCosts: number[]; baseCost: number };
  exits: ManifestExit[];
  /** Every graph in the order the runtime runs them. */
  stages: ManifestStage[];
  /** The one-graph models, when exported with them. */
  fused?: ManifestFused | null;
  /** Anything else worth knowing (data set, seed, exporter's check). */
  info?: Record<string, unknown>;
}

// ---- the parts of onnxruntime's API used here (common to node and web) ----
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
  dispose?(): void;
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}
export interface OrtModuleLike {
  InferenceSession: { create(model: any, options?: any): Promise<OrtSessionLike> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensorLike;
}

/** Reads one file of the exported model: bytes, or (Node) a path onnxruntime opens itself. */
export type ModelFileReader = (file: string) => Promise<Uint8Array | ArrayBuffer | string>;

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumArray = (v: unknown, n?: number): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && (n === undefined || v.length === n);
const isFileName = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9_.-]+\.onnx$/.test(v) && !v.startsWith('.');

/** Same rules as the libtorch runtime's validatePolicy. */
export function checkPolicy(p: ExitPolicy, numExits: number): void {
  if (!isObj(p)) throw new TypeError('exit policy: expected { kind: "confidence", tau } or { kind: "patience", patience }');
  if (p.kind === 'confidence') {
    if (typeof p.tau !== 'number' || Number.isNaN(p.tau) || p.tau < 0) throw new RangeError(`exit policy: tau must be a number >= 0 (tau > 1 never exits early), got ${p.tau}`);
  } else if (p.kind === 'patience') {
    if (!Number.isInteger(p.patience) || p.patience < 1) throw new RangeError(`exit policy: patience must be an integer >= 1, got ${p.patience}`);
    if (p.patience > numExits) throw new RangeError(`exit policy: patience ${p.patience} exceeds the ${numExits} exits`);
  } else {
    throw new TypeError(`exit policy: unknown kind '${(p as { kind: string }).kind}' (confidence or patience)`);
  }
}

/** Which one-graph models to load: both, only the one-image graph (a page that answers one drawing at a time), or none. */
export type FusedChoice = boolean | 'single';

/** The one-graph files of a model that a choice loads. */
function fusedFiles(m: EarlyExitManifest, fused: FusedChoice): { batch?: string; single?: string } {
  if (!fused || !m.fused) return {};
  return fused === 'single' ? { single: m.fused.single } : { batch: m.fused.batch, single: m.fused.single };
}

/** The .onnx files of a model: one per exit, and the one-graph models when it has them and they are wanted. */
export function graphFiles(m: EarlyExitManifest, fused: FusedChoice = true): Set<string> {
  const files = new Set(m.exits.map((e) => e.graph));
  for (const f of Object.values(fusedFiles(m, fused))) files.add(f as string);
  return files;
}

/** Checks a parsed manifest.json thoroughly; every problem is named. */
export function validateManifest(m: unknown): EarlyExitManifest {
  const bad = (why: string): never => {
    throw new ManifestError(`manifest: ${why}`);
  };
  if (!isObj(m)) bad('not a JSON object');
  const o = m as Record<string, unknown>;
  if (o.format !== MANIFEST_FORMAT) bad(`format is ${JSON.stringify(o.format)}, expected "${MANIFEST_FORMAT}"`);
  if (o.version !== MANIFEST_VERSION) bad(`version ${JSON.stringify(o.version)} is not supported (this runtime reads version ${MANIFEST_VERSION})`);
  if (!Number.isInteger(o.numClasses) || (o.numClasses as number) < 1) bad('numClasses must be a positive integer');
  const K = o.numClasses as number;
  if (!Array.isArray(o.classNames) || o.classNames.length !== K || !o.classNames.every((s) => typeof s === 'string')) bad(`classNames must be ${K} strings`);
  if (!isNumArray(o.inputShape, 3) || !o.inputShape.every((d) => Number.isInteger(d) && d > 0)) bad('inputShape must be [C, H, W], positive integers, e.g. [1, 32, 32]');
  const pre = o.preprocess;
  if (!isObj(pre)) bad('preprocess missing');
  const p = pre as Record<string, unknown>;
  const C = (o.inputShape as number[])[0];
  if (typeof p.scale !== 'number' || !isNumArray(p.mean, C) || !isNumArray(p.std, C) || !(p.std as number[]).every((s) => s > 0)) bad(`preprocess needs scale, and mean and std (> 0) for ${C} channel(s)`);
  if (!isNumArray(p.sourceShape, 3) || !Number.isInteger(p.pad) || (p.pad as number) < 0) bad('preprocess needs sourceShape [C, h, w] and an integer pad >= 0');
  const [sc, sh, sw] = p.sourceShape as number[];
  const [, H, W] = o.inputShape as number[];
  if (sc !== C || sh + 2 * (p.pad as number) !== H || sw + 2 * (p.pad as number) !== W) bad(`preprocess: sourceShape [${p.sourceShape}] padded by ${p.pad} is not the inputShape [${o.inputShape}]`);
  const exits = o.exits;
  if (!Array.isArray(exits) || exits.length < 1) bad('exits must be a non-empty array');
  const M = (exits as unknown[]).length;
  const ens = o.ensemble;
  if (ens !== null && ens !== 'geometric' && ens !== 'additive' && ens !== 'mean') bad(`ensemble ${JSON.stringify(ens)} unknown`);
  (exits as unknown[]).forEach((e, i) => {
    if (!isObj(e)) bad(`exits[${i}] is not an object`);
    const x = e as Record<string, unknown>;
    if (x.index !== i) bad(`exits[${i}].index is ${x.index}`);
    const last = i === M - 1;
    if (x.kind !== (last ? 'final' : 'ic')) bad(`exits[${i}].kind must be '${last ? 'final' : 'ic'}'`);
    if (!isFileName(x.graph)) bad(`exits[${i}].graph must be a .onnx file name in the model folder`);
    if (typeof x.cost !== 'number' || !(x.cost >= 0)) bad(`exits[${i}].cost must be a number >= 0`);
    if (typeof x.usesPreviousLogits !== 'boolean' || (x.usesPreviousLogits && i === 0)) bad(`exits[${i}].usesPreviousLogits must be a boolean (false for exit 0)`);
  });
  if (ens) {
    const p = o.ensembleParams as { weights?: unknown; bias?: unknown } | null;
    const rows = (v: unknown): v is unknown[][] => Array.isArray(v) && v.length === M && v.every((r) => r === null || isNumArray(r));
    if (!isObj(p) || !rows(p.weights) || !rows(p.bias)) bad(`ensembleParams must hold ${M} rows of finite weights and ${M} of biases for the ${ens} ensemble`);
    try {
      new ExitCombiner({ kind: ens as CombineKind, numClasses: K, weights: (p as { weights: number[][] }).weights, bias: (p as { bias: (number[] | null)[] }).bias });
    } catch (e) {
      bad(`ensembleParams: ${(e as Error).message}`);
    }
  } else if (o.ensembleParams !== null && o.ensembleParams !== undefined) bad('ensembleParams must be null without an ensemble');
  const costs = o.costs;
  if (!isObj(costs) || !isNumArray(costs.exitCosts, M) || typeof costs.baseCost !== 'number' || !(costs.baseCost > 0)) bad(`costs needs ${M} exitCosts and a baseCost > 0`);
  if (!Array.isArray(o.stages)) bad('stages must be an array');
  if (o.fused !== undefined && o.fused !== null) {
    const f = o.fused as Record<string, unknown>;
    if (!isObj(f) || (f.rule !== 'confidence' && f.rule !== 'patience') || !isFileName(f.batch) || !isFileName(f.single)) bad('fused must name its rule (confidence or patience) and its batch and single .onnx files in the model folder');
  }
  try {
    checkPolicy(o.policy as ExitPolicy, M);
  } catch (e) {
    bad(`policy: ${(e as Error).message}`);
  }
  return m as EarlyExitManifest;
}

/**
 * Raw pixels (0..255, [C, h, w] of preprocess.sourceShape, row-major; several
 * images back to back) -> normalised network input [N, C, H, W], exactly as
 * the training data loader does it.
 */
export function preprocessPixels(pixels: ArrayLike<number>, m: Pick<EarlyExitManifest, 'preprocess' | 'inputShape'>): Float32Array {
  const { scale, mean, std, sourceShape, pad } = m.preprocess;
  const [C, H, W] = m.inputShape;
  const [c, h, w] = sourceShape;
  if (c !== C || h + 2 * pad !== H || w + 2 * pad !== W) throw new RangeError(`preprocess: source [${sourceShape}] padded by ${pad} is not the input [${m.inputShape}]`);
  const per = c * h * w;
  if (pixels.length === 0 || pixels.length % per) throw new RangeError(`preprocess: expected a multiple of ${per} pixels ([${sourceShape}] per image), got ${pixels.length}`);
  const n = pixels.length / per;
  const out = new Float32Array(n * C * H * W);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < C; ch++) {
      const value = (v: number): number => (v * scale - mean[ch]) / std[ch];
      const base = (i * C + ch) * H * W;
      out.fill(value(0), base, base + H * W);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[base + (y + pad) * W + x + pad] = value(pixels[i * per + (ch * h + y) * w + x]);
    }
  return out;
}

const prod = (a: readonly number[]): number => a.reduce((s, d) => s * d, 1);

/** Rows idx of a row-major [n, rowSize] array (written into the front of `into` when it is large enough). */
export function takeRows(data: Float32Array, rowSize: number, idx: Int32Array, into?: Float32Array): Float32Array {
  const size = idx.length * rowSize;
  const out = into && into.length >= size ? into.subarray(0, size) : new Float32Array(size);
  for (let i = 0; i < idx.length; i++) copyRow(out, i * rowSize, data, idx[i] * rowSize, rowSize);
  return out;
}

interface Dense {
  data: Float32Array;
  dims: number[];
}

export interface RunInput {
  data: Float32Array;
  /** [N, C, H, W]; inferred from the data's length when omitted. */
  dims?: number[];
}

export interface StageTiming {
  /** Milliseconds spent in onnxruntime per stage file, summed over the call. */
  [file: string]: number;
}

export class OnnxEarlyExitRuntime {
  readonly numExits: number;
  readonly numClasses: number;
  /** Milliseconds per stage of the last call. */
  lastTimings: StageTiming = {};
  private readonly combiner: ExitCombiner | null;

  private constructor(
    private readonly ort: OrtModuleLike,
    readonly manifest: EarlyExitManifest,
    private readonly sessions: Map<string, OrtSessionLike>,
    private readonly fused: { batch?: string; single?: string },
  ) {
    this.numExits = manifest.exits.length;
    this.numClasses = manifest.numClasses;
    const ens = manifest.ensembleParams;
    this.combiner = manifest.ensemble && ens ? new ExitCombiner({ kind: manifest.ensemble, numClasses: manifest.numClasses, weights: ens.weights, bias: ens.bias }) : null;
  }

  /** Runs exit m's graph on the running rows. */
  private exitGraph(m: number, feats: Dense, prevLogits: Dense | undefined): Promise<Record<string, Dense>> {
    const e = this.manifest.exits[m];
    return this.stage(e.graph, e.usesPreviousLogits ? { x: feats, prev_logits: prevLogits as Dense } : { x: feats });
  }

  /**
   * Whether run() goes through a one-graph model for this policy (they serve
   * the exported rule only) and batch size (default: more than one image).
   */
  usesFused(policy: ExitPolicy, batchSize = 2): boolean {
    return this.manifest.fused?.rule === policy.kind && (batchSize === 1 ? this.fused.single : this.fused.batch) !== undefined;
  }

  /**
   * Opens every stage of a validated manifest (sessions are created one by
   * one), and its one-graph models as `fused` says (default: both).
   */
  static async load(ort: OrtModuleLike, manifest: unknown, read: ModelFileReader, sessionOptions?: unknown, fused: FusedChoice = true): Promise<OnnxEarlyExitRuntime> {
    const m = validateManifest(manifest);
    const files = graphFiles(m, fused);
    const sessions = new Map<string, OrtSessionLike>();
    try {
      for (const f of files) {
        let src: Uint8Array | ArrayBuffer | string;
        try {
          src = await read(f);
        } catch (e) {
          throw new ManifestError(`model file ${f}: ${(e as Error).message}`);
        }
        const model = src instanceof ArrayBuffer ? new Uint8Array(src) : src;
        const s = await ort.InferenceSession.create(model, sessionOptions);
        sessions.set(f, s);
      }
      const rt = new OnnxEarlyExitRuntime(ort, m, sessions, fusedFiles(m, fused));
      rt.checkGraphs();
      return rt;
    } catch (e) {
      for (const s of sessions.values()) await s.release?.();
      throw e;
    }
  }

  /** The graphs' inputs and outputs must be the ones the runtime feeds and reads. */
  private checkGraphs(): void {
    const want = (file: string, inputs: string[], outputs: string[]): void => {
      const s = this.sessions.get(file) as OrtSessionLike;
      const missingIn = inputs.filter((n) => !s.inputNames.includes(n));
      const extraIn = s.inputNames.filter((n) => !inputs.includes(n));
      const missingOut = outputs.filter((n) => !s.outputNames.includes(n));
      if (missingIn.length || extraIn.length || missingOut.length)
        throw new ManifestError(`${file}: graph has inputs [${s.inputNames}] and outputs [${s.outputNames}]; the runtime needs inputs [${inputs}] and outputs [${outputs}]`);
    };
    for (const e of this.manifest.exits) want(e.graph, e.usesPreviousLogits ? ['x', 'prev_logits'] : ['x'], e.kind === 'final' ? ['logits', 'log_probs'] : ['features', 'logits', 'log_probs']);
    const rule = this.manifest.fused?.rule === 'patience' ? 'patience' : 'tau';
    for (const file of Object.values(this.fused)) want(file as string, ['x', rule], ['prediction', 'probs', 'exit_index']);
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release?.();
    this.sessions.clear();
  }

  private checkInput(input: Float32Array | RunInput): Dense {
    const data = input instanceof Float32Array ? input : input?.data;
    const shape = this.manifest.inputShape;
    if (!(data instanceof Float32Array)) throw new TypeError('early-exit inference: input must be a Float32Array (or { data: Float32Array, dims })');
    const per = prod(shape);
    const dims = input instanceof Float32Array ? [data.length / per, ...shape] : input.dims ?? [data.length / per, ...shape];
    if (dims.length !== shape.length + 1 || dims.slice(1).join(',') !== shape.join(',') || !Number.isInteger(dims[0]) || dims[0] < 1)
      throw new RangeError(`early-exit inference: input must be [N, ${shape.join(', ')}], got [${dims.join(', ')}]${input instanceof Float32Array ? ` (from ${data.length} values)` : ''}`);
    if (data.length !== prod(dims)) throw new RangeError(`early-exit inference: input [${dims.join(', ')}] needs ${prod(dims)} values, got ${data.length}`);
    for (let i = 0; i < data.length; i++) if (Number.isNaN(data[i])) throw new RangeError('early-exit inference: input contains NaN');
    return { data, dims };
  }

  private async stage(file: string, feeds: Record<string, Dense>): Promise<Record<string, Dense>> {
    const s = this.sessions.get(file);
    if (!s) throw new Error(`stage ${file} is not loaded (runtime released?)`);
    const t = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new this.ort.Tensor('float32', v.data, v.dims)]));
    const t0 = now();
    const out = await s.run(t);
    this.lastTimings[file] = (this.lastTimings[file] ?? 0) + now() - t0;
    const res: Record<string, Dense> = {};
    for (const [k, v] of Object.entries(out)) {
      if (!(v.data instanceof Float32Array)) throw new Error(`${file}: output ${k} is ${v.type}, expected float32`);
      res[k] = { data: v.data, dims: [...v.dims] };
    }
    return res;
  }

  /**
   * Conditional inference on a batch: per sample the prediction, the
   * probabilities of the exit that answered, the exit index and its cost.
   */
  async run(input: Float32Array | RunInput, policy: ExitPolicy = this.manifest.policy): Promise<ExitResult> {
    checkPolicy(policy, this.numExits);
    const x = this.checkInput(input);
    this.lastTimings = {};
    if (this.usesFused(policy, x.dims[0])) return this.runFused(x, policy);
    const N = x.dims[0];
    const K = this.numClasses;
    const M = this.numExits;
    const res: ExitResult = { prediction: new Int32Array(N), probs: new Float32Array(N * K), exitIndex: new Int32Array(N), cost: new Float64Array(N) };
    const book = new ExitBook(this.combiner, res, policy, N, K, M);
    let feats: Dense = x;
    let prevLogits: Dense | undefined;
    // The survivors' features are copied into one buffer per call, reused
    // while they fit (each stage has consumed its input by the next copy):
    // a fresh 5 MB array per exit cost 0.58 ms against 0.35 reused at batch 128.
    let scratch: Float32Array | undefined;
    for (let m = 0; m < M; m++) {
      const final = m === M - 1;
      const out = await this.exitGraph(m, feats, prevLogits);
      const n = book.rows.length;
      const stay = book.step(m, out.log_probs.data, final, this.manifest.exits[m].cost);
      if (final || stay.length === 0) break;
      if (stay.length < n) {
        const f = out.features;
        const data = takeRows(f.data, prod(f.dims.slice(1)), stay, scratch);
        if (!scratch || data.buffer !== scratch.buffer) scratch = data;
        feats = { data, dims: [stay.length, ...f.dims.slice(1)] };
        prevLogits = { data: takeRows(out.logits.data, K, stay), dims: [stay.length, K] };
        book.keep(stay);
      } else {
        feats = out.features;
        prevLogits = out.logits;
      }
    }
    return res;
  }

  /** run() in one session call: the one-sample graph for one image, the batch graph otherwise. */
  private async runFused(x: Dense, policy: ExitPolicy): Promise<ExitResult> {
    const file = (x.dims[0] === 1 ? this.fused.single : this.fused.batch) as string;
    const s = this.sessions.get(file);
    if (!s) throw new Error(`stage ${file} is not loaded (runtime released?)`);
    const rule: Record<string, OrtTensorLike> =
      policy.kind === 'confidence' ? { tau: new this.ort.Tensor('float32', Float32Array.of(policy.tau), []) } : { patience: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(policy.patience)), []) };
    const t0 = now();
    const out = await s.run({ x: new this.ort.Tensor('float32', x.data, x.dims), ...rule });
    this.lastTimings[file] = now() - t0;
    const N = x.dims[0];
    const { prediction, probs, exit_index: exitIndex } = out;
    if (!(prediction.data instanceof BigInt64Array) || !(exitIndex.data instanceof BigInt64Array) || !(probs.data instanceof Float32Array) || probs.data.length !== N * this.numClasses)
      throw new Error(`${file}: outputs are not the int64 prediction and exit_index and the float32 [${N}, ${this.numClasses}] probs this runtime reads`);
    const res: ExitResult = { prediction: new Int32Array(N), probs: probs.data, exitIndex: new Int32Array(N), cost: new Float64Array(N) };
    for (let i = 0; i < N; i++) {
      const m = Number(exitIndex.data[i]);
      if (!(m >= 0 && m < this.numExits)) throw new Error(`${file}: sample ${i} left at exit ${m}, the model has ${this.numExits}`);
      res.prediction[i] = Number(prediction.data[i]);
      res.exitIndex[i] = m;
      res.cost[i] = this.manifest.exits[m].cost;
    }
    return res;
  }

  /** Every exit's probabilities (ensembled when the method has an ensemble) for a batch: [M][N * K]. */
  async allExits(input: Float32Array | RunInput): Promise<Float32Array[]> {
    const x = this.checkInput(input);
    this.lastTimings = {};
    const probs: Float32Array[] = [];
    let feats: Dense = x;
    let prevLogits: Dense | undefined;
    const members: Float32Array[] = [];
    for (let m = 0; m < this.numExits; m++) {
      const out = await this.exitGraph(m, feats, prevLogits);
      members.push(out.log_probs.data);
      probs.push(exitProbabilities(this.combiner, m, members, x.dims[0], this.numClasses));
      feats = out.features;
      prevLogits = out.logits;
    }
    return probs;
  }
}

/**
 * Exit m's answer as probabilities, in both runtimes: its ensemble over the
 * members' log-probabilities so far (members[j]: [n * K], or with rows the
 * batch's [N * K] with the running samples at rows), or its own; exp
 * in float32, as the offline evaluator turns log-probabilities into
 * probabilities (probsPerExit). With scratch buffers ([n * K] or more) the
 * result is written into `into` (its first n * K values).
 */
export function exitProbabilities(combiner: ExitCombiner | null, m: number, members: readonly Float32Array[], n: number, K: number, rows?: Int32Array, scratch?: { logq: Float32Array; into: Float32Array }): Float32Array {
  let logP: Float32Array;
  if (combiner) logP = combiner.combine(m, members, n, rows, scratch?.logq);
  else {
    checkMemberRows(members, m, n, K, rows);
    logP = rows ? takeRows(members[m], K, rows, scratch?.logq) : members[m];
  }
  const p = scratch ? scratch.into : new Float32Array(n * K);
  for (let i = 0; i < n * K; i++) p[i] = Math.exp(logP[i]);
  return p;
}

/** What the patience rule remembers per running sample. */
export interface RuleState {
  lastArg?: Int32Array;
  streak?: Int32Array;
}

/**
 * The exit rule on one exit's probabilities ([n * K] row-major), shared by
 * the libtorch and onnxruntime runtimes so both decide exactly as the
 * offline evaluator: which rows leave, and every row's answer (the first n
 * values of `into`).
 */
function decideExits(p: Float32Array, n: number, K: number, policy: ExitPolicy, final: boolean, state: RuleState, into: { leave: Uint8Array; arg: Int32Array }): { leave: Uint8Array; arg: Int32Array } {
  const arg = argmaxRows(p, n, K, into.arg);
  const leave = into.leave;
  if (final) leave.fill(1, 0, n);
  else if (policy.kind === 'confidence') {
    // In float32, as the offline evaluator compares (src/eval/exit-rules.ts).
    const tau = Math.fround(policy.tau);
    for (let i = 0; i < n; i++) leave[i] = p[i * K + arg[i]] > tau ? 1 : 0;
  } else {
    const { lastArg, streak } = state;
    const s = new Int32Array(n);
    for (let i = 0; i < n; i++) s[i] = lastArg && streak ? (arg[i] === lastArg[i] ? streak[i] + 1 : 1) : 1;
    state.streak = s;
    state.lastArg = arg.slice(0, n); // its own copy: `into` is overwritten at the next exit
    for (let i = 0; i < n; i++) leave[i] = s[i] >= policy.patience ? 1 : 0;
  }
  return { leave, arg };
}

/**
 * Writes the answers of the rows that leave exit `exit` into res (rows[i] is
 * row i's place in the batch); returns the positions of the rows that stay
 * (the front of `stay`, in fillOrder's order).
 */
function answerLeaving(res: ExitResult, rows: Int32Array, leave: Uint8Array, arg: Int32Array, p: Float32Array, K: number, exit: number, cost: number, stay: Int32Array, tail: Int32Array): Int32Array {
  let kept = 0;
  for (let i = 0; i < rows.length; i++) {
    if (!leave[i]) {
      stay[kept++] = i;
      continue;
    }
    const r = rows[i];
    res.prediction[r] = arg[i];
    res.exitIndex[r] = exit;
    res.cost[r] = cost;
    copyRow(res.probs, r * K, p, i * K, K);
  }
  fillOrder(stay, kept, tail);
  return stay.subarray(0, kept);
}

/**
 * The books' order of the rows that stay, from their ascending positions
 * stay[0..kept): a row below `kept` keeps its place, and each place a
 * leaving row frees goes to a row from `kept` on, in ascending order, so
 * that the libtorch backbone moves only those rows (takeRows inPlace). The
 * native book orders them the same (FillOrder in native/src/exit_book.cc,
 * which says why it works in place). tail: room for `kept` entries.
 */
export function fillOrder(stay: Int32Array, kept: number, tail: Int32Array): void {
  let p = kept;
  while (p > 0 && stay[p - 1] >= kept) p--;
  const q = kept - p;
  for (let t = 0; t < q; t++) tail[t] = stay[p + t];
  for (let i = p - 1; i >= 0; i--) stay[stay[i]] = stay[i];
  for (let j = 0, t = 0; t < q; j++) if (stay[j] !== j) stay[j] = tail[t++];
}

/**
 * dst[to..to+n) = src[from..from+n). Element by element: set() of a
 * subarray view cost an allocation per row and exit at batch 128.
 */
function copyRow(dst: Float32Array, to: number, src: Float32Array, from: number, n: number): void {
  for (let k = 0; k < n; k++) dst[to + k] = src[from + k];
}

/** values[stay[i]] for every i, as a new array (Int32Array.from with a callback ran a call per element). */
function pickRows(values: Int32Array, stay: Int32Array): Int32Array {
  const out = new Int32Array(stay.length);
  for (let i = 0; i < stay.length; i++) out[i] = values[stay[i]];
  return out;
}

/** Keeps the rule's memory for the rows that go on. */
function keepRuleRows(state: RuleState, stay: Int32Array): void {
  if (state.lastArg) state.lastArg = pickRows(state.lastArg, stay);
  if (state.streak) state.streak = pickRows(state.streak, stay);
}

/** ExitBook's working memory for one batch size. */
export interface ExitBookBuffers {
  N: number;
  K: number;
  M: number;
  store: Float32Array;
  logq: Float32Array;
  p: Float32Array;
  decided: { leave: Uint8Array; arg: Int32Array };
  stay: Int32Array;
  /** fillOrder's room. */
  tail: Int32Array;
  rows: Int32Array;
  /** Room for one exit's log-probabilities ([N * K]), for a head to write into. */
  head: Float32Array;
}

function exitBookBuffers(N: number, K: number, M: number): ExitBookBuffers {
  return { N, K, M, store: new Float32Array(M * N * K), logq: new Float32Array(N * K), p: new Float32Array(N * K), decided: { leave: new Uint8Array(N), arg: new Int32Array(N) }, stay: new Int32Array(N), tail: new Int32Array(N), rows: new Int32Array(N), head: new Float32Array(N * K) };
}

/**
 * One call's exit bookkeeping, the same for both runtimes: every exit's
 * log-probabilities kept by batch position (samples leaving never make the
 * earlier ones re-pack), the ensemble, the rule and the answers, in buffers
 * made once per call rather than eight typed arrays per exit. A caller that
 * runs one call at a time (the libtorch runtime; the onnxruntime one awaits
 * between exits, so two calls may interleave) passes the previous call's
 * `buffers` back: at batch 1 making them took ~8 us of a ~0.9 ms call.
 */
export class ExitBook {
  /** Batch position of every running sample. */
  rows: Int32Array;
  /** The working memory, for the caller's next call. */
  readonly buffers: ExitBookBuffers;
  private readonly members: Float32Array[] = [];
  private readonly rule: RuleState = {};

  constructor(private readonly combiner: ExitCombiner | null, private readonly res: ExitResult, private readonly policy: ExitPolicy, readonly N: number, readonly K: number, M: number, reuse?: ExitBookBuffers) {
    const b = reuse && reuse.N === N && reuse.K === K && reuse.M === M ? reuse : exitBookBuffers(N, K, M);
    this.buffers = b;
    for (let i = 0; i < N; i++) b.rows[i] = i;
    this.rows = b.rows;
  }

  /**
   * Exit m's log-probabilities of the running rows ([n * K]): answers the
   * rows that leave; returns the positions among the running rows of those
   * that stay (valid until the next step).
   */
  step(m: number, logProbs: Float32Array, final: boolean, cost: number): Int32Array {
    const { N, K, rows } = this;
    const n = rows.length;
    const { store, logq, p: into, decided, stay, tail } = this.buffers;
    const member = store.subarray(this.members.length * N * K, (this.members.length + 1) * N * K);
    for (let i = 0; i < n; i++) copyRow(member, rows[i] * K, logProbs, i * K, K);
    this.members.push(member);
    const p = exitProbabilities(this.combiner, m, this.members, n, K, rows, { logq, into });
    const { leave, arg } = decideExits(p, n, K, this.policy, final, this.rule, decided);
    return answerLeaving(this.res, rows, leave, arg, p, K, m, cost, stay, tail);
  }

  /** Narrows the running rows to `stay` (from step). */
  keep(stay: Int32Array): void {
    this.rows = pickRows(this.rows, stay);
    keepRuleRows(this.rule, stay);
  }
}

/** First index of the maximum of each row (torch.argmax's choice on ties). */
export function argmaxRows(p: Float32Array, n: number, K: number, into?: Int32Array): Int32Array {
  const out = into ?? new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (p[i * K + k] > p[i * K + best]) best = k;
    out[i] = best;
  }
  return out;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());
