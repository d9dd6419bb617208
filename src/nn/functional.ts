// Stateless layer functions over the native table (PyTorch's F.*).
import { native } from '../tensor/native';
import { Tensor, wrapHandle as wrap } from '../tensor/tensor';
import { noteTensorWrite } from '../tensor/versions';
import { costRules, profiling, record } from './profiler';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);
export type Reduction = 'mean' | 'sum' | 'none';

export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = wrap(native.linear(x.handle, weight.handle, bias?.handle));
  if (profiling()) record('linear', y, ...costRules.linear(y, weight));
  return y;
}

export interface Conv2dArgs { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number }
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, o: Conv2dArgs = {}): Tensor {
  const y = wrap(native.conv2d(x.handle, weight.handle, bias?.handle, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1));
  if (profiling()) record('conv2d', y, ...costRules.conv2d(y, weight, bias !== undefined));
  return y;
}

/**
 * relu?(conv2d(x) + add?): one native call, and without gradients one pass
 * over the output (oneDNN post-ops); with gradients the separate ops.
 * With reluInput, x becomes relu(x) in its own memory first (the caller
 * gives its values up; without gradients only). With inRows (int32 [n]) the
 * convolution reads those rows of x instead (reluInput: their ReLU on the
 * way, x untouched), with addRows those of the addend (reluAdd: its ReLU):
 * a batch narrowed after an exit, read without a copy where the 16-channel
 * loop serves (native/src/conv16.cc), copied first elsewhere. With keepInput
 * x stays as it is without inRows too (reluInput on the way).
 */
export function conv2dFused(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  o: Conv2dArgs,
  epilogue: { add?: Tensor; relu?: boolean; consumeAdd?: boolean; reluInput?: boolean; inRows?: Tensor; addRows?: Tensor; reluAdd?: boolean; keepInput?: boolean },
): Tensor {
  const { relu = false, add, consumeAdd = false, reluInput = false, inRows, addRows, reluAdd = false, keepInput = false } = epilogue;
  const y = wrap(native.convFused(x.handle, weight.handle, bias?.handle, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1, relu, add?.handle, consumeAdd, reluInput, inRows?.handle, addRows?.handle, reluAdd, keepInput));
  if (epilogue.reluInput && profiling()) record('relu', x, ...costRules.elementwise(x, 1));
  if (profiling()) record('conv2d', y, ...costRules.conv2d(y, weight, bias !== undefined));
  return y;
}

export interface BatchNormArgs { weight?: Tensor; bias?: Tensor; runningMean?: Tensor; runningVar?: Tensor; training: boolean; momentum?: number; eps?: number }
/** In training mode the running statistics are updated in place. */
export function batchNorm(x: Tensor, o: BatchNormArgs): Tensor {
  const y = wrap(native.batchNorm(x.handle, o.weight?.handle, o.bias?.handle, o.runningMean?.handle, o.runningVar?.handle, o.training, o.momentum ?? 0.1, o.eps ?? 1e-5));
  if (o.training && (o.runningMean || o.runningVar)) noteTensorWrite();
  if (profiling()) record('batchNorm', y, ...costRules.elementwise(y, 2));
  return y;
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  const y = wrap(native.layerNorm(x.handle, normalizedShape, weight?.handle, bias?.handle, eps));
  if (profiling()) record('layerNorm', y, ...costRules.elementwise(y, 5));
  return y;
}

/**
 * With inPlace the caller gives x up: without gradients the result is
 * written into x's memory (x's handle and the result's then share it; the
 * caller only disposes x).
 */
export function relu(x: Tensor, o: { inPlace?: boolean } = {}): Tensor {
  const y = wrap(native.relu(x.handle, o.inPlace ?? false));
  if (profiling()) record('relu', y, ...costRules.elementwise(y, 1));
  return y;
}
export const dropout = (x: Tensor, p: number, training: boolean): Tensor => wrap(native.dropout(x.handle, p, training));

export interface PoolArgs { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean; countIncludePad?: boolean }
export function maxPool2d(x: Tensor, kernel: Pair, o: PoolArgs = {}): Tensor {
  const [kh, kw] = pair(kernel);
  const y = wrap(native.maxPool2d(x.handle, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
  if (profiling()) record('maxPool2d', y, ...costRules.pool(y, kh * kw, true));
  return y;
}
export function avgPool2d(x: Tensor, kernel: Pair, o: PoolArgs = {}): Tensor {
  const [kh, kw] = pair(kernel);
  const y = wrap(native.avgPool2d(x.handle, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true));
  if (profiling()) record('avgPool2d', y, ...costRules.pool(y, kh * kw, false));
  return y;
}
/** Adaptive pools are counted with the window of the equivalent fixed pool. */
function adaptiveWindow(x: Tensor, out: [number, number]): number {
  const [h, w] = x.shape.slice(-2);
  return Math.ceil(h / out[0]) * Math.ceil(w / out[1]);
}
export function adaptiveAvgPool2d(x: Tensor, out: Pair): Tensor {
  const y = wrap(native.adaptiveAvgPool2d(x.handle, pair(out)));
  if (profiling()) record('adaptiveAvgPool2d', y, ...costRules.pool(y, adaptiveWindow(x, pair(out)), false));
  return y;
}
/**
 * linear(adaptiveAvgPool2d(x, 1).flatten(1)) in one native call, a pass over
 * the maps per image (not profiled: Linear.forwardPooled profiles the ops it
 * stands for).
 */
export const poolLinear = (x: Tensor, weight: Tensor, bias?: Tensor): Tensor => wrap(native.poolLinear(x.handle, weight.handle, bias?.handle));
export function adaptiveMaxPool2d(x: Tensor, out: Pair): Tensor {
  const y = wrap(native.adaptiveMaxPool2d(x.handle, pair(out)));
  if (profiling()) record('adaptiveMaxPool2d', y, ...costRules.pool(y, adaptiveWindow(x, pair(out)), true));
  return y;
}

export const softmax = (x: Tensor, dim = -1): Tensor => wrap(native.softmax(x.handle, dim));
export const logSoftmax = (x: Tensor, dim = -1): Tensor => wrap(native.logSoftmax(x.handle, dim));

export interface CrossEntropyArgs { reduction?: Reduction; labelSmoothing?: number; weight?: Tensor }
/** logits [N, K] (or [N, K, ...]) against int64 class indices. */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyArgs = {}): Tensor {
  return wrap(native.crossEntropy(logits.handle, target.handle, o.reduction ?? 'mean', o.labelSmoothing ?? 0, o.weight?.handle));
}
export function nllLoss(logProbs: Tensor, target: Tensor, reduction: Reduction = 'mean', weight?: Tensor): Tensor {
  return wrap(native.nllLoss(logProbs.handle, target.handle, reduction, weight?.handle));
}
/** PyTorch's KLDivLoss: `input` holds log-probabilities; KL(target || input). */
export function klDiv(input: Tensor, target: Tensor, reduction: Reduction | 'batchmean' = 'mean', logTarget = false): Tensor {
  return wrap(native.klDiv(input.handle, target.handle, reduction, logTarget));
}
export const mseLoss = (a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor => wrap(native.mseLoss(a.handle, b.handle, reduction));
export const oneHot = (t: Tensor, numClasses: number): Tensor => wrap(native.oneHot(t.handle, numClasses));
