// Factories: from JS data, constants, ranges and random draws.
import { native } from './native';
import { TorchError } from './errors';
import { Tensor, wrapHandle, wrapHandles, type DType, type TypedArray } from './tensor';

type Nested = number | boolean | Nested[];

function flattenNested(data: Nested, shape: number[], out: number[], depth = 0): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new Error(`tensor(): ragged nested array at depth ${depth}`);
    for (const d of data) flattenNested(d, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new Error('tensor(): ragged nested array');
    out.push(Number(data));
  }
}

function typedFor(values: ArrayLike<number>, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'int32': return Int32Array.from(values);
    case 'uint8':
    case 'bool': return Uint8Array.from(values);
    case 'int64': return BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v))));
  }
  // Same error as the native check, which a typed array of unknown dtype would never reach.
  const e = new TorchError(`ztw.fromArray: unknown dtype '${dtype}' (expected float32, float64, int64, int32, uint8 or bool)`);
  e.op = 'fromArray';
  e.code = 'E_ARG';
  throw e;
}

function inferDtype(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  return 'uint8';
}

/**
 * tensor([[1, 2], [3, 4]]), tensor(float32Array, [2, 2]) or
 * tensor([1, 2, 3], undefined, 'int64'). Typed arrays keep their dtype unless one is given.
 */
export function tensor(data: Nested | TypedArray, shape?: number[], dtype?: DType): Tensor {
  let values: TypedArray;
  let dims: number[];
  if (ArrayBuffer.isView(data)) {
    const ta = data as TypedArray;
    dims = shape ?? [ta.length];
    const want = dtype ?? inferDtype(ta);
    values = want === inferDtype(ta) || (want === 'bool' && ta instanceof Uint8Array) ? ta : typedFor(Array.from(ta as ArrayLike<number>, Number), want);
    return wrapHandle(native.fromArray(values, dims, want));
  }
  const flat: number[] = [];
  const inferred: number[] = [];
  flattenNested(data as Nested, inferred, flat);
  dims = shape ?? inferred;
  const dt = dtype ?? 'float32';
  return wrapHandle(native.fromArray(typedFor(flat, dt), dims, dt));
}

export const scalar = (v: number, dtype: DType = 'float32'): Tensor => tensor([v], [], dtype);
export const zeros = (shape: number[], dtype: DType = 'float32'): Tensor => wrapHandle(native.zeros(shape, dtype));
export const ones = (shape: number[], dtype: DType = 'float32'): Tensor => wrapHandle(native.ones(shape, dtype));
export const full = (shape: number[], value: number, dtype: DType = 'float32'): Tensor => wrapHandle(native.full(shape, value, dtype));
export const empty = (shape: number[], dtype: DType = 'float32'): Tensor => wrapHandle(native.empty(shape, dtype));
export const eye = (n: number, dtype: DType = 'float32'): Tensor => wrapHandle(native.eye(n, dtype));
export const arange = (start: number, end?: number, step = 1, dtype: DType = 'int64'): Tensor =>
  end === undefined ? wrapHandle(native.arange(0, start, step, dtype)) : wrapHandle(native.arange(start, end, step, dtype));
export const linspace = (start: number, end: number, steps: number, dtype: DType = 'float32'): Tensor =>
  wrapHandle(native.linspace(start, end, steps, dtype));
export const zerosLike = (t: Tensor): Tensor => wrapHandle(native.zerosLike(t.handle));
export const onesLike = (t: Tensor): Tensor => wrapHandle(native.onesLike(t.handle));
export const fullLike = (t: Tensor, v: number): Tensor => wrapHandle(native.fullLike(t.handle, v));

export const rand = (shape: number[], dtype: DType = 'float32'): Tensor => wrapHandle(native.rand(shape, dtype));
export const randn = (shape: number[], dtype: DType = 'float32'): Tensor => wrapHandle(native.randn(shape, dtype));
export const randint = (low: number, high: number, shape: number[], dtype: DType = 'int64'): Tensor =>
  wrapHandle(native.randint(low, high, shape, dtype));
export const randperm = (n: number): Tensor => wrapHandle(native.randperm(n));
/** 0/1 draws: with p, of t's shape with probability p; without, with probabilities t. */
export const bernoulli = (t: Tensor, p?: number): Tensor => wrapHandle(native.bernoulli(t.handle, p));
export const multinomial = (probs: Tensor, n: number, replacement = false): Tensor =>
  wrapHandle(native.multinomial(probs.handle, n, replacement));
export const manualSeed = (seed: number): void => native.manualSeed(seed);

export const cat = (ts: Tensor[], dim = 0): Tensor => wrapHandle(native.cat(ts.map((t) => t.handle), dim));
export const stack = (ts: Tensor[], dim = 0): Tensor => wrapHandle(native.stack(ts.map((t) => t.handle), dim));
export const where = (cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor =>
  wrapHandle(native.where(cond.handle, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b));
export const split = (t: Tensor, s: number | number[], dim = 0): Tensor[] => wrapHandles(native.split(t.handle, s, dim));
