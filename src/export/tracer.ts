// A tracer that records ONNX nodes while a module runs once. It wraps the
// native op table for the duration of a trace (nothing is patched, and
// nothing costs anything, outside one), so every op of every layer and
// tensor method is seen, including those of create.ts (cat, stack). Values
// derived from the graph's inputs are "traced"; any other tensor an op reads
// (a parameter, a folded conv-BN weight, a mask) is a constant and becomes
// an initializer holding its current values, so constant subexpressions are
// folded by construction. An op on traced values that has no ONNX rule, a
// read of a traced value's data (data-dependent control flow), an in-place
// update of one, or a use of a value traced in an earlier graph that is not
// this graph's input fails loudly instead of exporting something wrong.
import { native, type NativeHandle } from '../tensor/native';
import type { Tensor } from '../tensor/tensor';
import type { OnnxDType, OnnxGraph, OnnxNode, OnnxTensor, OnnxValueInfo, AttrValue } from './onnx-proto';

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

type Handle = NativeHandle;
type NativeFn = (...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Reading these never depends on a traced value's data. */
const METADATA = new Set(['dispose', 'isDisposed', 'shape', 'strides', 'dtype', 'numel', 'dim', 'isContiguous', 'dataId', 'requiresGrad', 'isLeaf', 'version', 'versions', 'versionsMatch', 'grad', 'setErrorClass', 'getNumThreads', 'setNumThreads', 'blasThreads', 'liveTensors', 'configInfo', 'allocatorStats', 'emptyCache', 'setGradEnabled', 'isGradEnabled', 'manualSeed']);
/** Ops whose output is the input itself as far as inference goes. */
const ALIASES = new Set(['contiguous', 'clone', 'detach']);

interface Value {
  name: string;
  /** Dimension 0 is the batch. */
  batched: boolean;
}

interface GraphState {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  values: Map<Handle, Value>;
  constants: Map<Handle, string>;
  scalars: Map<string, string>;
  usedNames: Set<string>;
}

const DT: Record<string, OnnxDType> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'bool' };

function rawBytes(data: ArrayLike<number> | BigInt64Array, dtype: OnnxDType): Uint8Array {
  const v = data as ArrayBufferView;
  if (dtype === 'bool') return Uint8Array.from(data as ArrayLike<number>, (x) => (x ? 1 : 0));
  // Typed arrays are little-endian on every platform Node and browsers run on.
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

function constTensor(name: string, dtype: OnnxDType, dims: number[], values: number[]): OnnxTensor {
  let arr: ArrayBufferView;
  switch (dtype) {
    case 'float32': arr = Float32Array.from(values); break;
    case 'float64': arr = Float64Array.from(values); break;
    case 'int64': arr = BigInt64Array.from(values.map((v) => BigInt(Math.trunc(v)))); break;
    case 'int32': arr = Int32Array.from(values); break;
    default: arr = Uint8Array.from(values);
  }
  return { name, dtype, dims, raw: new Uint8Array(arr.buffer) };
}

/**
 * One tracing session. start() wraps the op table, beginGraph/endGraph
 * delimit graphs (one at a time; a trace may run across generator steps),
 * stop() restores the table. Always stop() in a finally.
 */
export class Tracer {
  private originals = new Map<string, NativeFn>();
  private graph: GraphState | null = null;
  /** Every handle traced in any graph of this session, to catch cross-graph reads (ids are never reused, so entries cannot go stale). */
  private everTraced = new Map<Handle, string>();
  private counter = 0;

  /** Names of known tensors (parameters, buffers) for readable initializers. */
  constructor(private readonly constantNames = new Map<Handle, string>()) {}

  private call(fn: string, ...args: unknown[]): any { // eslint-disable-line @typescript-eslint/no-explicit-any
    return (this.originals.get(fn) ?? native[fn])(...args);
  }

  start(): void {
    if (this.originals.size) throw new Error('Tracer: already started');
    for (const [key, fn] of Object.entries(native)) {
      if (typeof fn !== 'function') continue;
      this.originals.set(key, fn);
      native[key] = (...args: unknown[]) => this.intercept(key, fn, args);
    }
  }

  stop(): void {
    for (const [key, fn] of this.originals) native[key] = fn;
    this.originals.clear();
    this.graph = null;
  }

  private isHandle(v: unknown): v is Handle {
    return typeof v === 'bigint';
  }

  private handlesIn(args: unknown[]): Handle[] {
    const out: Handle[] = [];
    for (const a of args) {
      if (this.isHandle(a)) out.push(a);
      else if (Array.isArray(a)) for (const b of a) if (this.isHandle(b)) out.push(b);
    }
    return out;
  }

  private intercept(key: string, fn: NativeFn, args: unknown[]): unknown {
    const g = this.graph;
    if (METADATA.has(key)) return fn(...args);
    if (!g) {
      // Between graphs: anything computed from a traced value stays marked, so no later graph takes it for a constant.
      const out = fn(...args);
      const from = this.handlesIn(args).find((h) => this.everTraced.has(h));
      if (from) for (const h of this.handlesIn([out])) this.everTraced.set(h, `${this.everTraced.get(from)} (through '${key}' outside any graph)`);
      return out;
    }
    const hs = this.handlesIn(args);
    const traced = hs.filter((h) => g.values.has(h));
    for (const h of hs)
      if (!g.values.has(h) && this.everTraced.has(h))
        throw new ExportError(`graph '${g.name}': op '${key}' reads '${this.everTraced.get(h)}', a value of an earlier graph that is not an input of this one (the stages cannot be cut here)`);
    if (!traced.length) return fn(...args);
    if (key === 'toArray' || key === 'item') throw new ExportError(`graph '${g.name}': the traced code reads the data of a traced tensor (${key}); data-dependent control flow cannot be exported`);
    if (key.endsWith('_') || key === 'setGrad' || key === 'backward' || key === 'setRequiresGrad') throw new ExportError(`graph '${g.name}': in-place op '${key}' on a traced tensor cannot be exported`);
    const out = fn(...args);
    if (ALIASES.has(key)) {
      g.values.set(out, g.values.get(args[0] as Handle) as Value);
      this.everTraced.set(out, this.everTraced.get(args[0] as Handle) as string);
      return out;
    }
    const rule = RULES[key];
    if (!rule) throw new ExportError(`graph '${g.name}': op '${key}' has no ONNX export rule`);
    rule(new Emitter(this, g, key), args, out);
    return out;
  }

  // ---- graph building, used by the rules ----

  /** A fresh value name, unique in this graph. */
  fresh(g: GraphState, hint: string): string {
    let n = `${hint}_${this.counter++}`;
    while (g.usedNames.has(n)) n = `${hint}_${this.counter++}`;
    g.usedNames.add(n);
    return n;
  }

  valueOf(g: GraphState, h: Handle): Value | undefined {
    return g.values.get(h);
  }

  /** The name of a handle in this graph: a traced value or a constant (made an initializer). */
  nameOf(g: GraphState, h: Handle): string {
    const v = g.values.get(h);
    if (v) return v.name;
    const c = g.constants.get(h);
    if (c) return c;
    const dtype = DT[this.call('dtype', h) as string];
    if (!dtype) throw new ExportError(`graph '${g.name}': constant of unsupported dtype ${this.call('dtype', h)}`);
    const dims = this.call('shape', h) as number[];
    const data = this.call('toArray', h);
    const name = this.fresh(g, this.constantNames.get(h) ?? 'const');
    g.initializers.push({ name, dtype, dims, raw: rawBytes(data, dtype) });
    g.constants.set(h, name);
    return name;
  }

  /** A scalar or small constant of given values (shared within a graph). */
  constant(g: GraphState, dtype: OnnxDType, dims: number[], values: number[], hint = 'k'): string {
    const key = `${dtype}|${dims}|${values}`;
    const hit = g.scalars.get(key);
    if (hit) return hit;
    const name = this.fresh(g, hint);
    g.initializers.push(constTensor(name, dtype, dims, values));
    g.scalars.set(key, name);
    return name;
  }

  define(g: GraphState, h: Handle, name: string, batched: boolean): void {
    g.values.set(h, { name, batched });
    this.everTraced.set(h, `${g.name}/${name}`);
  }

  shapeOf(h: Handle): number[] {
    return this.call('shape', h) as number[];
  }
  dtypeOf(h: Handle): OnnxDType {
    return DT[this.call('dtype', h) as string];
  }

  // ---- graph scopes ----

  beginGraph(name: string): void {
    if (!this.originals.size) throw new Error('Tracer: start() first');
    if (this.graph) throw new Error(`Tracer: graph '${this.graph.name}' is still open`);
    this.graph = { name, nodes: [], initializers: [], inputs: [], outputs: [], values: new Map(), constants: new Map(), scalars: new Map(), usedNames: new Set() };
  }

  private open(): GraphState {
    if (!this.graph) throw new Error('Tracer: no open graph');
    return this.graph;
  }

  /** Declares t a graph input; dimension 0 is the symbolic batch 'N'. */
  input(name: string, t: Tensor): void {
    const g = this.open();
    if (g.usedNames.has(name)) throw new Error(`Tracer: duplicate name '${name}'`);
    g.usedNames.add(name);
    const shape = this.shapeOf(t.handle);
    g.inputs.push({ name, dtype: this.dtypeOf(t.handle), shape: ['N', ...shape.slice(1)] });
    this.define(g, t.handle, name, true);
  }

  /**
   * Declares t a graph output under `name`. The node that made t is renamed
   * to write it there: an Identity instead was a copy in onnxruntime (0.6 ms
   * of an 11 ms stage at batch 128). Inputs and values already declared
   * outputs go through an Identity.
   */
  output(name: string, t: Tensor): void {
    const g = this.open();
    const v = g.values.get(t.handle);
    if (!v) throw new ExportError(`graph '${g.name}': output '${name}' does not depend on the graph's inputs`);
    if (!v.batched) throw new ExportError(`graph '${g.name}': output '${name}' has lost the batch dimension`);
    if (g.usedNames.has(name)) throw new Error(`Tracer: duplicate name '${name}'`);
    g.usedNames.add(name);
    const producer = g.nodes.find((n) => n.outputs.includes(v.name));
    if (producer && !g.outputs.some((o) => o.name === v.name)) {
      for (const n of g.nodes) {
        n.inputs = n.inputs.map((i) => (i === v.name ? name : i));
        n.outputs = n.outputs.map((o) => (o === v.name ? name : o));
      }
      v.name = name;
    } else g.nodes.push({ op: 'Identity', inputs: [v.name], outputs: [name] });
    const shape = this.shapeOf(t.handle);
    g.outputs.push({ name, dtype: this.dtypeOf(t.handle), shape: ['N', ...shape.slice(1)] });
  }

  endGraph(docString?: string): OnnxGraph {
    const g = this.open();
    this.graph = null;
    if (!g.outputs.length) throw new ExportError(`graph '${g.name}': no outputs`);
    return { name: g.name, nodes: g.nodes, initializers: g.initializers, inputs: g.inputs, outputs: g.outputs, docString };
  }
}

/** Runs fn with a started tracer and always restores the op table. */
export function withTracer<T>(constantNames: Map<Handle, string>, fn: (t: Tracer) => T): T {
  const t = new Tracer(constantNames);
  t.start();
  try {
    return fn(t);
  } finally {
    t.stop();
  }
}

// ---------------------------------------------------------------------------
// Op rules: native op name -> ONNX nodes.

class Emitter {
  constructor(readonly tracer: Tracer, readonly g: GraphState, readonly op: string) {}

  fail(why: string): never {
    throw new ExportError(`graph '${this.g.name}': op '${this.op}': ${why}`);
  }
  name(h: Handle): string {
    return this.tracer.nameOf(this.g, h);
  }
  batched(h: unknown): boolean {
    return typeof h === 'bigint' ? this.tracer.valueOf(this.g, h)?.batched ?? false : false;
  }
  shape(h: Handle): number[] {
    return this.tracer.shapeOf(h);
  }
  dtype(h: Handle): OnnxDType {
    return this.tracer.dtypeOf(h);
  }
  ints(values: number[]): string {
    return this.tracer.constant(this.g, 'int64', [values.length], values, 'ints');
  }
  scalar(v: number, dtype: OnnxDType): string {
    return this.tracer.constant(this.g, dtype, [], [v], 'scalar');
  }
  /** Emits one node; returns its (first) output name. */
  node(op: string, inputs: string[], attrs?: Record<string, AttrValue>, nOut = 1): string[] {
    const outs = Array.from({ length: nOut }, () => this.tracer.fresh(this.g, op.toLowerCase()));
    this.g.nodes.push({ op, inputs, outputs: outs, attrs });
    return outs;
  }
  /** Binds a native output handle to an ONNX value. */
  bind(out: Handle, name: string, batched: boolean): void {
    this.tracer.define(this.g, out, name, batched);
  }
  /** An operand that may be a number: a scalar constant of dtype. */
  operand(x: unknown, dtype: OnnxDType): string {
    if (typeof x === 'number' || typeof x === 'boolean') return this.scalar(Number(x), dtype);
    const n = this.name(x as Handle);
    const dt = this.dtype(x as Handle);
    return dt === dtype ? n : this.node('Cast', [n], { to: { int: ONNX_DTYPE_CODE[dtype] } })[0];
  }
}

const ONNX_DTYPE_CODE: Record<OnnxDType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 };

type Rule = (e: Emitter, args: any[], out: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

const norm = (d: number, rank: number): number => (d < 0 ? d + rank : d);

function binary(onnxOp: string): Rule {
  return (e, [a, b, alpha], out) => {
    const dt = e.dtype(out);
    let bn = e.operand(b, dt);
    if (alpha !== undefined && alpha !== null && alpha !== 1) bn = e.node('Mul', [bn, e.scalar(alpha, dt)])[0];
    const [y] = e.node(onnxOp, [e.operand(a, dt), bn]);
    e.bind(out, y, e.batched(a) || e.batched(b));
  };
}

function unary(onnxOp: string): Rule {
  return (e, [x], out) => e.bind(out, e.node(onnxOp, [e.name(x)])[0], e.batched(x));
}

function pool(kind: 'Max' | 'Average'): Rule {
  return (e, args, out) => {
    const [x, kernel, stride, padding] = args as [Handle, number[], number[], number[]];
    const attrs: Record<string, AttrValue> = { kernel_shape: kernel, strides: stride, pads: [padding[0], padding[1], padding[0], padding[1]] };
    if (kind === 'Max') {
      const [, , , , dilation, ceil] = args as [unknown, unknown, unknown, unknown, number[], boolean];
      if (dilation.some((d) => d !== 1)) attrs.dilations = dilation;
      attrs.ceil_mode = ceil ? 1 : 0;
    } else {
      const [, , , , ceil, countIncludePad] = args as [unknown, unknown, unknown, unknown, boolean, boolean];
      attrs.ceil_mode = ceil ? 1 : 0;
      attrs.count_include_pad = countIncludePad ? 1 : 0;
    }
    e.bind(out, e.node(`${kind}Pool`, [e.name(x)], attrs)[0], e.batched(x));
  };
}

function adaptivePool(kind: 'Max' | 'Average'): Rule {
  return (e, [x, size], out) => {
    const [h, w] = e.shape(x).slice(-2);
    const [oh, ow] = size as number[];
    let y: string;
    if (oh === 1 && ow === 1) y = e.node(`Global${kind}Pool`, [e.name(x)])[0];
    else if (h % oh === 0 && w % ow === 0) y = e.node(`${kind}Pool`, [e.name(x)], { kernel_shape: [h / oh, w / ow], strides: [h / oh, w / ow] })[0];
    else return e.fail(`adaptive pooling ${h}x${w} -> ${oh}x${ow} is not a fixed pooling`);
    e.bind(out, y, e.batched(x));
  };
}

/** A reshape target that keeps a batched dimension 0 symbolic. */
function reshapeTarget(e: Emitter, x: Handle, target: number[]): { shape: number[]; batched: boolean } {
  const inShape = e.shape(x);
  if (!e.batched(x)) return { shape: target, batched: false };
  if (target.length && target[0] === inShape[0]) return { shape: [0, ...target.slice(1)], batched: true };
  e.fail(`reshape of a batched [${inShape}] to [${target}] does not keep the batch dimension first`);
}

function reduce(onnxOp: string, axesAsInput: boolean): Rule {
  return (e, [x, dims, keepdim], out) => {
    const rank = e.shape(x).length;
    const axes = dims === null || dims === undefined ? [...Array(rank).keys()] : (Array.isArray(dims) ? dims : [dims]).map((d: number) => norm(d, rank));
    const inputs = [e.name(x)];
    const attrs: Record<string, AttrValue> = { keepdims: keepdim ? 1 : 0 };
    if (axesAsInput) inputs.push(e.ints(axes));
    else attrs.axes = { ints: axes };
    const batched = e.batched(x) && !axes.includes(0);
    e.bind(out, e.node(onnxOp, inputs, attrs)[0], batched);
  };
}

function convNode(e: Emitter, x: Handle, w: Handle, b: Handle | undefined, stride: number[], padding: number[], dilation: number[], groups: number): string {
  const [, , kh, kw] = e.shape(w);
  const inputs = b ? [e.name(x), e.name(w), e.name(b)] : [e.name(x), e.name(w)];
  return e.node('Conv', inputs, { kernel_shape: [kh, kw], strides: stride, pads: [padding[0], padding[1], padding[0], padding[1]], dilations: dilation, group: { int: groups } })[0];
}

const RULES: Record<string, Rule> = {
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'),
  pow: binary('Pow'),
  maximum: binary('Max'),
  minimum: binary('Min'),
  neg: unary('Neg'),
  exp: unary('Exp'),
  log: unary('Log'),
  sqrt: unary('Sqrt'),
  abs: unary('Abs'),
  sign: unary('Sign'),
  floor: unary('Floor'),
  ceil: unary('Ceil'),
  reciprocal: unary('Reciprocal'),
  sigmoid: unary('Sigmoid'),
  tanh: unary('Tanh'),
  relu: unary('Relu'),
  rsqrt: (e, [x], out) => e.bind(out, e.node('Reciprocal', e.node('Sqrt', [e.name(x)]))[0], e.batched(x)),
  square: (e, [x], out) => e.bind(out, e.node('Mul', [e.name(x), e.name(x)])[0], e.batched(x)),
  log1p: (e, [x], out) => e.bind(out, e.node('Log', e.node('Add', [e.name(x), e.scalar(1, e.dtype(x))]))[0], e.batched(x)),
  clamp: (e, [x, lo, hi], out) => {
    const dt = e.dtype(x);
    const y = e.node('Clip', [e.name(x), lo === null ? '' : e.scalar(lo, dt), hi === null ? '' : e.scalar(hi, dt)])[0];
    e.bind(out, y, e.batched(x));
  },
  cast: (e, [x, dtype], out) => e.bind(out, e.node('Cast', [e.name(x)], { to: { int: ONNX_DTYPE_CODE[DT[dtype]] } })[0], e.batched(x)),

  softmax: (e, [x, dim], out) => e.bind(out, e.node('Softmax', [e.name(x)], { axis: dim })[0], e.batched(x)),
  logSoftmax: (e, [x, dim], out) => e.bind(out, e.node('LogSoftmax', [e.name(x)], { axis: dim })[0], e.batched(x)),
  dropout: (e, [x, p, training], out) => {
    if (training && p > 0) e.fail('dropout in training mode (put the module in eval mode)');
    e.bind(out, e.name(x), e.batched(x));
  },

  // lerp(a, b, w) = a + w * (b - a); w a number or a tensor
  lerp: (e, [a, b, w], out) => {
    const dt = e.dtype(out);
    const [d] = e.node('Sub', [e.operand(b, dt), e.operand(a, dt)]);
    const [s] = e.node('Mul', [d, e.operand(w, dt)]);
    e.bind(out, e.node('Add', [e.operand(a, dt), s])[0], e.batched(a) || e.batched(b) || e.batched(w));
  },
  matmul: (e, [a, b], out) => e.bind(out, e.node('MatMul', [e.name(a), e.name(b)])[0], e.batched(a) || e.batched(b)),
  linear: (e, [x, w, b], out) => {
    let y: string;
    if (e.shape(x).length === 2) {
      y = e.node('Gemm', b ? [e.name(x), e.name(w), e.name(b)] : [e.name(x), e.name(w)], { transB: 1 })[0];
    } else {
      y = e.node('MatMul', [e.name(x), e.node('Transpose', [e.name(w)], { perm: [1, 0] })[0]])[0];
      if (b) y = e.node('Add', [y, e.name(b)])[0];
    }
    e.bind(out, y, e.batched(x));
  },
  poolLinear: (e, [x, w, b], out) => {
    const [pooled] = e.node('GlobalAveragePool', [e.name(x)]);
    const [flat] = e.node('Flatten', [pooled], { axis: 1 });
    e.bind(out, e.node('Gemm', b ? [flat, e.name(w), e.name(b)] : [flat, e.name(w)], { transB: 1 })[0], e.batched(x));
  },
  conv2d: (e, [x, w, b, stride, padding, dilation, groups], out) => e.bind(out, convNode(e, x, w, b, stride, padding, dilation, groups), e.batched(x)),
  convFused: (e, [x, w, b, stride, padding, dilation, groups, relu, add, , reluInput], out) => {
    // The input's ReLU in its own memory would change a value the graph has already named.
    if (reluInput) e.fail('a convolution that applies its input\'s ReLU in place (a staged pass with consumeTaps; trace one without)');
    let y = convNode(e, x, w, b, stride, padding, dilation, groups);
    if (add) y = e.node('Add', [y, e.operand(add, e.dtype(out))])[0];
    if (relu) y = e.node('Relu', [y])[0];
    e.bind(out, y, e.batched(x) || (add ? e.batched(add) : false));
  },
  batchNorm: (e, [x, w, b, rm, rv, training, , eps], out) => {
    if (training) e.fail('batch norm in training mode (put the module in eval mode)');
    if (!rm || !rv) e.fail('batch norm without running statistics');
    const c = e.shape(x)[1];
    const dt = e.dtype(x);
    const scale = w ? e.name(w) : e.tracer.constant(e.g, dt, [c], new Array(c).fill(1), 'ones');
    const bias = b ? e.name(b) : e.tracer.constant(e.g, dt, [c], new Array(c).fill(0), 'zeros');
    e.bind(out, e.node('BatchNormalization', [e.name(x), scale, bias, e.name(rm), e.name(rv)], { epsilon: { float: eps } })[0], e.batched(x));
  },
  layerNorm: (e, [x, shape, w, b, eps], out) => {
    const dt = e.dtype(x);
    const n = shape.reduce((s: number, d: number) => s * d, 1);
    const scale = w ? e.name(w) : e.tracer.constant(e.g, dt, shape, new Array(n).fill(1), 'ones');
    const inputs = b ? [e.name(x), scale, e.name(b)] : [e.name(x), scale];
    e.bind(out, e.node('LayerNormalization', inputs, { axis: -shape.length, epsilon: { float: eps } })[0], e.batched(x));
  },
  maxPool2d: pool('Max'),
  avgPool2d: pool('Average'),
  adaptiveAvgPool2d: adaptivePool('Average'),
  adaptiveMaxPool2d: adaptivePool('Max'),

  sum: reduce('ReduceSum', true),
  mean: reduce('ReduceMean', false),
  logsumexp: reduce('ReduceLogSumExp', false),
  maxAll: (e, [x], out) => reduce('ReduceMax', false)(e, [x, null, false], out),
  minAll: (e, [x], out) => reduce('ReduceMin', false)(e, [x, null, false], out),
  maxDim: (e, [x, dim, keepdim], out) => {
    const rank = e.shape(x).length;
    const d = norm(dim, rank);
    const batched = e.batched(x) && d !== 0;
    e.bind(out[0], e.node('ReduceMax', [e.name(x)], { axes: { ints: [d] }, keepdims: keepdim ? 1 : 0 })[0], batched);
    e.bind(out[1], e.node('ArgMax', [e.name(x)], { axis: d, keepdims: keepdim ? 1 : 0 })[0], batched);
  },
  argmax: (e, [x, dim, keepdim], out) => {
    if (dim === null || dim === undefined) e.fail('argmax over all dimensions');
    const d = norm(dim, e.shape(x).length);
    e.bind(out, e.node('ArgMax', [e.name(x)], { axis: d, keepdims: keepdim ? 1 : 0 })[0], e.batched(x) && d !== 0);
  },

  view: (e, [x, shape], out) => {
    const t = reshapeTarget(e, x, shape);
    e.bind(out, e.node('Reshape', [e.name(x), e.ints(t.shape)])[0], t.batched);
  },
  reshape: (e, [x, shape], out) => RULES.view(e, [x, shape], out),
  flatten: (e, [x, start, end], out) => {
    const s = e.shape(x);
    const rank = s.length;
    const a = norm(start, rank);
    const b = norm(end, rank);
    if (a === 0 && e.batched(x)) e.fail('flatten over the batch dimension');
    let y: string;
    if (b === rank - 1 && a >= 1) y = a === 1 ? e.node('Flatten', [e.name(x)], { axis: 1 })[0] : e.node('Reshape', [e.name(x), e.ints([...new Array(a).fill(0), -1])])[0];
    else y = e.node('Reshape', [e.name(x), e.ints([...new Array(a).fill(0), -1, ...s.slice(b + 1)])])[0];
    e.bind(out, y, e.batched(x));
  },
  squeeze: (e, [x, dim], out) => {
    const s = e.shape(x);
    const axes = dim === null || dim === undefined ? s.map((d, i) => (d === 1 && !(i === 0 && e.batched(x)) ? i : -1)).filter((i) => i >= 0) : [norm(dim, s.length)];
    if (e.batched(x) && axes.includes(0)) e.fail('squeeze of the batch dimension');
    const real = axes.filter((i) => s[i] === 1);
    e.bind(out, real.length ? e.node('Squeeze', [e.name(x), e.ints(real)])[0] : e.name(x), e.batched(x));
  },
  unsqueeze: (e, [x, dim], out) => {
    const d = norm(dim, e.shape(x).length + 1);
    if (d === 0 && e.batched(x)) e.fail('unsqueeze before the batch dimension');
    e.bind(out, e.node('Unsqueeze', [e.name(x), e.ints([d])])[0], e.batched(x));
  },
  permute: (e, [x, dims], out) => {
    const rank = e.shape(x).length;
    const perm = dims.map((d: number) => norm(d, rank));
    if (e.batched(x) && perm[0] !== 0) e.fail('permute moves the batch dimension');
    e.bind(out, e.node('Transpose', [e.name(x)], { perm })[0], e.batched(x));
  },
  transpose: (e, [x, d0, d1], out) => {
    const rank = e.shape(x).length;
    const perm = [...Array(rank).keys()];
    const [a, b] = [norm(d0, rank), norm(d1, rank)];
    [perm[a], perm[b]] = [perm[b], perm[a]];
    RULES.permute(e, [x, perm], out);
  },
  cat: (e, [hs, dim], out) => {
    const rank = e.shape(out).length;
    const d = norm(dim, rank);
    const batched = hs.some((h: Handle) => e.batched(h));
    if (batched && d === 0) e.fail('concatenation along the batch dimension');
    if (batched && !hs.every((h: Handle) => e.batched(h))) e.fail('concatenation of batched and unbatched tensors');
    const dt = e.dtype(out);
    e.bind(out, e.node('Concat', hs.map((h: Handle) => e.operand(h, dt)), { axis: d })[0], batched);
  },
  stack: (e, [hs, dim], out) => {
    const rank = e.shape(out).length;
    const d = norm(dim, rank);
    const batched = hs.some((h: Handle) => e.batched(h));
    if (batched && (d === 0 || !hs.every((h: Handle) => e.batched(h)))) e.fail('stacking along the batch dimension, or of batched with unbatched tensors');
    const dt = e.dtype(out);
    const parts = hs.map((h: Handle) => e.node('Unsqueeze', [e.operand(h, dt), e.ints([d])])[0]);
    e.bind(out, e.node('Concat', parts, { axis: d })[0], batched);
  },
  narrow: (e, [x, dim, start, length], out) => {
    const d = norm(dim, e.shape(x).length);
    if (d === 0 && e.batched(x)) e.fail('narrow along the batch dimension');
    e.bind(out, e.node('Slice', [e.name(x), e.ints([start]), e.ints([start + length]), e.ints([d])])[0], e.batched(x));
  },
  select: (e, [x, dim, index], out) => {
    const d = norm(dim, e.shape(x).length);
    if (d === 0 && e.batched(x)) e.fail('select along the batch dimension');
    e.bind(out, e.node('Gather', [e.name(x), e.tracer.constant(e.g, 'int64', [], [index], 'index')], { axis: d })[0], e.batched(x));
  },
  indexSelect: (e, [x, dim, index], out) => {
    const d = norm(dim, e.shape(x).length);
    if (d === 0 && e.batched(x)) e.fail('index_select along the batch dimension');
    e.bind(out, e.node('Gather', [e.name(x), e.name(index)], { axis: d })[0], e.batched(x));
  },
  expand: (e, [x, shape], out) => {
    const target = shape.map((s: number, i: number) => (s === -1 || (i === 0 && e.batched(x)) ? 1 : s));
    e.bind(out, e.node('Expand', [e.name(x), e.ints(target)])[0], e.batched(x));
  },
  pad: (e, [x, pads, value], out) => {
    const rank = e.shape(x).length;
    const begin = new Array(rank).fill(0);
    const end = new Array(rank).fill(0);
    for (let i = 0; i < pads.length / 2; i++) {
      begin[rank - 1 - i] = pads[2 * i];
      end[rank - 1 - i] = pads[2 * i + 1];
    }
    if (e.batched(x) && (begin[0] || end[0])) e.fail('padding of the batch dimension');
    e.bind(out, e.node('Pad', [e.name(x), e.ints([...begin, ...end]), e.scalar(value ?? 0, e.dtype(x))], { mode: 'constant' })[0], e.batched(x));
  },
};
