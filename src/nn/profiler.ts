// Operation counting for the cost model. While a profiler is active, every
// layer function in functional.ts reports its multiply-adds and FLOPs (the
// reference profiler's convention), under the name of the module that runs.
import type { Tensor } from '../tensor/tensor';

export interface OpCost {
  layer: string;
  op: string;
  outShape: number[];
  macs: number;
  flops: number;
}

let active: OpCost[] | null = null;
let currentLayer = '';

export const profiling = (): boolean => active !== null;

export function withLayerName<T>(name: string, fn: () => T): T {
  const prev = currentLayer;
  currentLayer = name;
  try {
    return fn();
  } finally {
    currentLayer = prev;
  }
}

/** Runs fn and returns the costs of every counted op it executed; fn sees the list as it grows. */
export function collectCosts(fn: (soFar: readonly OpCost[]) => void): OpCost[] {
  const prev = active;
  const out: OpCost[] = [];
  active = out;
  try {
    fn(out);
  } finally {
    active = prev;
  }
  return out;
}

export function record(op: string, out: Tensor, macs: number, flops: number): void {
  if (active) active.push({ layer: currentLayer, op, outShape: out.shape, macs, flops });
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

// Per-op rules: conv numel(out) * (2*k*k*cin/groups - 1 + bias); BN 2 per
// element; ReLU 1; max-pool k*k-1 and avg-pool k*k per output; linear
// (2*in - 1) * out (+ out with a bias, which the reference omits; we keep its rule).
export const costRules = {
  conv2d(out: Tensor, weight: Tensor, hasBias: boolean): [number, number] {
    const [, cinPerGroup, kh, kw] = weight.shape;
    const perOut = kh * kw * cinPerGroup;
    const n = numel(out.shape);
    return [n * perOut, n * (2 * perOut - 1 + (hasBias ? 1 : 0))];
  },
  linear(out: Tensor, weight: Tensor): [number, number] {
    const [o, i] = weight.shape;
    const rows = numel(out.shape) / o;
    return [rows * i * o, rows * (2 * i - 1) * o];
  },
  elementwise(out: Tensor, perElement: number): [number, number] {
    return [0, numel(out.shape) * perElement];
  },
  pool(out: Tensor, window: number, isMax: boolean): [number, number] {
    return [0, numel(out.shape) * (isMax ? window - 1 : window)];
  },
};
