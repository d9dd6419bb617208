// One ONNX graph for the whole early-exit model: the exit graphs (segment +
// head each) composed with the ensemble, the exit rule and the row
// bookkeeping, so that onnxruntime runs an input in one session call. With
// one session per exit, onnxruntime paid ~0.1 ms of session overhead per exit
// at batch 1 and ~2 ms of layout reorders and unfused boundary ops per exit
// at batch 128 (the early exit was slower than the plain backbone there).
//
// After exit m an If node holds everything that follows, entered only while
// a sample runs; the branches nest one per exit. Two shapes of graph:
// - batch: the rows that leave exit m are scattered into the outputs
//   (ScatterND), the others kept (Compress) for the If;
// - one sample: no rows at all, the If's condition is the rule itself (a
//   third of the nodes per exit, which is what a sample pays at batch 1).
// One graph serves one rule (confidence: input tau; patience: input
// patience). At batch 1 onnxruntime's cost is per node, so an exit's
// decision is kept to a few: the ensemble in float32 (a Gemm), the rule on
// log q (max log q > log tau: no exp for a sample that goes on). The answers
// equal the per-exit runtime's up to float32 rounding (the JS combiner sums
// in float64), which can move a decision only at a tie with tau; the exit
// graphs inside are optimised by onnxruntime in another context than the
// per-exit files, and differ from them by as much (~1e-7).
import type { CombineKind } from '../exits/combine';
import type { AttrValue, OnnxGraph, OnnxNode, OnnxTensor, OnnxValueInfo } from './onnx-proto';

export type FusedRule = 'confidence' | 'patience';
export const FUSED_OUTPUTS = ['prediction', 'probs', 'exit_index'] as const;
/** The rule's input: a float32 scalar tau, or an int64 scalar patience. */
export const ruleInput = (rule: FusedRule): string => (rule === 'confidence' ? 'tau' : 'patience');

export interface FuseOptions {
  /** Exit m's graph: x [, prev_logits] -> [features,] logits, log_probs (export.ts). */
  exits: OnnxGraph[];
  usesPreviousLogits: boolean[];
  numClasses: number;
  /** The ensembles as numbers (ExitCombinerSpec's weights and biases), or null to answer with each exit's own head. */
  ensemble: { kind: CombineKind; weights: ArrayLike<number>[]; bias: (ArrayLike<number> | null)[] } | null;
  /** The image input's value info (x of exit 0). */
  input: OnnxValueInfo;
  rule: FusedRule;
  /** A graph for one sample at a time (x is [1, C, H, W]) instead of any batch. */
  single?: boolean;
}

function raw(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
const int64Value = (v: number): OnnxTensor => ({ name: 'value', dtype: 'int64', dims: [1], raw: raw(BigInt64Array.from([BigInt(v)])) });

/** The nodes and constants of one graph level (the main graph or an If branch). */
class Level {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  constructor(readonly name: string, private readonly names: { n: number }) {}

  fresh(hint: string): string {
    return `${this.name}/${hint}_${this.names.n++}`;
  }
  op(op: string, inputs: string[], attrs?: Record<string, AttrValue>, hint = op.toLowerCase()): string {
    return this.ops(op, inputs, 1, attrs, hint)[0];
  }
  ops(op: string, inputs: string[], outputs: number, attrs?: Record<string, AttrValue>, hint = op.toLowerCase()): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(hint));
    this.nodes.push({ op, inputs, outputs: out, attrs, name: this.fresh(op) });
    return out;
  }
  constant(hint: string, dtype: 'float32' | 'int64', dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(hint);
    const data = dtype === 'float32' ? Float32Array.from(values) : BigInt64Array.from(Array.from(values, (v) => BigInt(v)));
    this.initializers.push({ name, dtype, dims, raw: raw(data) });
    return name;
  }
  sub(name: string): Level {
    return new Level(name, this.names);
  }
  graph(outputs: OnnxValueInfo[]): OnnxGraph {
    return { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: [], outputs };
  }
}

/** What runs on from one exit to the next (one row per running sample in the batch graph). */
interface Running {
  x: string;
  prevLogits?: string;
  /** Member log-probabilities so far: [n, m, K] (batch) or [m, K] (one sample). */
  members?: string;
  lastArg?: string;
  streak?: string;
  /** Batch graph: the running rows' batch positions and the outputs so far ([N], [N, K], [N]). */
  rows?: string;
  prediction?: string;
  probs?: string;
  exitIndex?: string;
}

/** Composes the exit graphs into one graph: x and the rule's input -> prediction, probs, exit_index. */
export function fuseExitGraphs(o: FuseOptions): OnnxGraph {
  const M = o.exits.length;
  const K = o.numClasses;
  const single = o.single === true;
  if (M < 1 || o.usesPreviousLogits.length !== M) throw new Error(`fuseExitGraphs: ${M} graphs, ${o.usesPreviousLogits.length} cascade flags`);
  if (o.ensemble && o.ensemble.weights.length !== M) throw new Error(`fuseExitGraphs: ensemble weights for ${o.ensemble.weights.length} exits, ${M} graphs`);
  const counter = { n: 0 };
  const top = new Level('fused', counter);
  // Shared constants of the main graph, made when first used (onnxruntime warns about unused ones).
  const SHARED = { one: [[], 1], zero: [[], 0], axis0: [[1], 0], axis1: [[1], 1] } as const;
  const made = new Map<string, string>();
  const c = (k: keyof typeof SHARED | 'logTau'): string => {
    if (!made.has(k)) made.set(k, k === 'logTau' ? top.op('Log', ['tau'], undefined, 'log_tau') : top.constant(k, 'int64', [...SHARED[k][0]], [SHARED[k][1]]));
    return made.get(k) as string;
  };

  const threshold = ruleInput(o.rule);
  const outInfo = (names: readonly string[]): OnnxValueInfo[] =>
    [
      { name: '', dtype: 'int64' as const, shape: ['N'] },
      { name: '', dtype: 'float32' as const, shape: ['N', K] },
      { name: '', dtype: 'int64' as const, shape: ['N'] },
    ].map((v, i) => ({ ...v, name: names[i] }));

  let start: Running = { x: 'x' };
  if (!single) {
    const N1 = top.op('Shape', ['x'], { start: 0, end: 1 }, 'batch');
    const N = top.op('Squeeze', [N1, c('axis0')], undefined, 'n');
    const zeros = (hint: string, shape: string, dtype: 'float32' | 'int64'): string =>
      top.op('ConstantOfShape', [shape], { value: { name: 'value', dtype, dims: [1], raw: raw(dtype === 'float32' ? new Float32Array(1) : new BigInt64Array(1)) } }, hint);
    const NK = top.op('Concat', [N1, top.constant('classes', 'int64', [1], [K])], { axis: 0 }, 'nk');
    start = { x: 'x', rows: top.op('Range', [c('zero'), N, c('one')], undefined, 'rows'), prediction: zeros('prediction0', N1, 'int64'), probs: zeros('probs0', NK, 'float32'), exitIndex: zeros('exit0', N1, 'int64') };
  }

  /** Exit m's log q (ensembled, or its own log-probabilities) and the members so far. */
  const ensemble = (L: Level, m: number, logProbs: string, s: Running): { logq: string; members?: string } => {
    const ens = o.ensemble;
    if (!ens) return { logq: logProbs };
    // One sample: members [m + 1, K] and a Gemm; a batch: [n, m + 1, K] and a broadcast MatMul.
    const member = single ? logProbs : L.op('Unsqueeze', [logProbs, c('axis1')]);
    const members = s.members ? L.op('Concat', [s.members, member], { axis: single ? 0 : 1 }, 'members') : member;
    const w = L.constant(`w${m}`, 'float32', [1, m + 1], ens.weights[m]);
    const geometric = ens.kind === 'geometric';
    const terms = geometric ? members : L.op('Exp', [members]);
    const bias = ens.bias[m];
    const b = bias ? L.constant(`b${m}`, 'float32', [K], geometric ? bias : Array.from(bias, Math.exp)) : null;
    let z: string;
    if (single) z = L.op('Gemm', b ? [w, terms, b] : [w, terms]);
    else {
      z = L.op('Squeeze', [L.op('MatMul', [w, terms]), c('axis1')]);
      if (b) z = L.op('Add', [z, b]);
    }
    const logq = geometric ? L.op('LogSoftmax', [z], { axis: 1 }, 'logq') : L.op('Log', [L.op('Div', [z, L.op('ReduceSum', [z, c('axis1')], { keepdims: 1 })])], undefined, 'logq');
    return { logq, members };
  };

  /**
   * The rule on exit m's log q: which samples leave, the answer and the
   * rule's state. TopK (k = 1) gives the maximum and its first index in one
   * node, as argmaxRows picks; the confidence rule compares log q with
   * log(tau), so only the samples that leave pay for the exp.
   */
  const decide = (L: Level, logq: string, s: Running): { leave: string; arg: string; streak?: string } => {
    const [top1, idx] = L.ops('TopK', [logq, L.constant('k', 'int64', [1], [1])], 2, { axis: 1 }, 'top');
    // One sample keeps [1, 1] (an If takes any one-element condition); a batch needs [n] for Compress.
    const arg = single ? idx : L.op('Squeeze', [idx, c('axis1')], undefined, 'arg');
    if (o.rule === 'confidence') return { leave: L.op('Greater', [single ? top1 : L.op('Squeeze', [top1, c('axis1')]), c('logTau')], undefined, 'leave'), arg };
    const streak = s.streak
      ? L.op('Where', [L.op('Equal', [arg, s.lastArg as string]), L.op('Add', [s.streak, c('one')]), c('one')], undefined, 'streak')
      : L.op('ConstantOfShape', [L.op('Shape', [arg])], { value: int64Value(1) }, 'streak');
    return { leave: L.op('GreaterOrEqual', [streak, threshold], undefined, 'leave'), arg, streak };
  };

  // Exit m's nodes into level L, then (unless it is the last) an If over the rest; returns its results' names in L.
  const emit = (m: number, L: Level, s: Running): string[] => {
    const g = o.exits[m];
    const final = m === M - 1;
    const prefix = `e${m}/`;
    const rename = (v: string): string => (v === '' ? v : v === 'x' ? s.x : v === 'prev_logits' ? (s.prevLogits as string) : prefix + v);
    g.nodes.forEach((n, i) => L.nodes.push({ ...n, name: prefix + (n.name ?? `${n.op}_${i}`), inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
    for (const t of g.initializers) L.initializers.push({ ...t, name: prefix + t.name });
    const { logq, members } = ensemble(L, m, prefix + 'log_probs', s);
    const ifNode = (cond: string, then: Level, thenOut: string[], otherwise: Level, elseOut: string[]): string[] => {
      const out = FUSED_OUTPUTS.map((n) => L.fresh(n));
      L.nodes.push({ op: 'If', inputs: [cond], outputs: out, name: L.fresh('If'), attrs: { then_branch: { graph: then.graph(outInfo(thenOut)) }, else_branch: { graph: otherwise.graph(outInfo(elseOut)) } } });
      return out;
    };

    if (single) {
      // One sample: the If's condition is the rule; leaving answers with this exit.
      const answer = (A: Level, arg: string): string[] => {
        const one = A.constant('shape1', 'int64', [1], [1]);
        return [A.op('Reshape', [arg, one], undefined, 'prediction'), A.op('Exp', [logq], undefined, 'probs'), A.op('ConstantOfShape', [one], { value: int64Value(m) }, 'exit_index')];
      };
      if (final) return answer(L, L.ops('TopK', [logq, L.constant('k', 'int64', [1], [1])], 2, { axis: 1 }, 'top')[1]);
      const d = decide(L, logq, s);
      const leave = L.sub(`leave_${m}`);
      const run = L.sub(`exit_${m + 1}`);
      const runOut = emit(m + 1, run, { x: prefix + 'features', prevLogits: o.usesPreviousLogits[m + 1] ? prefix + 'logits' : undefined, members, lastArg: d.arg, streak: d.streak });
      return ifNode(d.leave, leave, answer(leave, d.arg), run, runOut);
    }

    // A batch: scatter the rows that leave into the outputs, keep the rest.
    const d = final ? null : decide(L, logq, s);
    const arg = d ? d.arg : L.op('ArgMax', [logq], { axis: 1, keepdims: 0 }, 'arg');
    const scatter = (leaving: string | null): string[] => {
      const rows = s.rows as string;
      const idx = leaving ? L.op('Compress', [rows, leaving], { axis: 0 }, 'leaving') : rows;
      const at = L.op('Unsqueeze', [idx, c('axis1')], undefined, 'at');
      const pick = (v: string): string => (leaving ? L.op('Compress', [v, leaving], { axis: 0 }) : v);
      return [
        L.op('ScatterND', [s.prediction as string, at, pick(arg)], undefined, 'prediction'),
        L.op('ScatterND', [s.probs as string, at, L.op('Exp', [pick(logq)])], undefined, 'probs'),
        L.op('ScatterND', [s.exitIndex as string, at, L.op('ConstantOfShape', [L.op('Shape', [idx])], { value: int64Value(m) }, 'exit')], undefined, 'exit_index'),
      ];
    };
    if (!d) return scatter(null);
    const answers = scatter(d.leave);
    const stay = L.op('Not', [d.leave], undefined, 'stay');
    const carry = (v: string): string => L.op('Compress', [v, stay], { axis: 0 }, 'kept');
    const next: Running = {
      x: carry(prefix + 'features'),
      rows: carry(s.rows as string),
      prevLogits: o.usesPreviousLogits[m + 1] ? carry(prefix + 'logits') : undefined,
      members: members ? carry(members) : undefined,
      lastArg: d.streak ? carry(arg) : undefined,
      streak: d.streak ? carry(d.streak) : undefined,
      prediction: answers[0],
      probs: answers[1],
      exitIndex: answers[2],
    };
    const more = L.op('Greater', [L.op('Size', [next.rows as string]), c('zero')], undefined, 'more');
    const run = L.sub(`exit_${m + 1}`);
    const runOut = emit(m + 1, run, next);
    // A branch's outputs are its own values: the answers so far go out through Identities.
    const done = L.sub(`done_${m}`);
    const doneOut = answers.map((v) => done.op('Identity', [v]));
    return ifNode(more, run, runOut, done, doneOut);
  };

  emit(0, top, start).forEach((v, i) => top.nodes.push({ op: 'Identity', inputs: [v], outputs: [FUSED_OUTPUTS[i]], name: top.fresh('Identity') }));
  const g = top.graph(outInfo(FUSED_OUTPUTS));
  const x = { ...o.input, name: 'x', shape: single ? [1, ...o.input.shape.slice(1)] : o.input.shape };
  g.inputs = [x, o.rule === 'confidence' ? { name: 'tau', dtype: 'float32', shape: [] } : { name: 'patience', dtype: 'int64', shape: [] }];
  g.docString = `ztw early-exit model in one graph (${o.rule} rule, ${single ? 'one sample' : 'any batch'}): x, ${threshold} -> prediction, probs, exit_index`;
  return g;
}
