// Stateless layer functions over the native table (PyTorch's F.*).
import { native } from '../tensor/native';
import { Tensor, wrapHandle as wrap } from '../tensor/tensor';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);
export type Reduction = 'mean' | 'sum' | 'none';

export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return wrap(native.linear(x.handle, weight.handle, bias?.handle));
}

export interface Conv2dArgs { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number }
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, o: Conv2dArgs = {}): Tensor {
  return wrap(native.conv2d(x.handle, weight.handle, bias?.handle, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1));
}

export interface BatchNormArgs { weight?: Tensor; bias?: Tensor; runningMean?: Tensor; runningVar?: Tensor; training: boolean; momentum?: number; eps?: number }
/** In training mode the running statistics are updated in place. */
export function batchNorm(x: Tensor, o: BatchNormArgs): Tensor {
  return wrap(native.batchNorm(x.handle, o.weight?.handle, o.bias?.handle, o.runningMean?.handle, o.runningVar?.handle, o.training, o.momentum ?? 0.1, o.eps ?? 1e-5));
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  return wrap(native.layerNorm(x.handle, normalizedShape, weight?.handle, bias?.handle, eps));
}

export const relu = (x: Tensor): Tensor => wrap(native.relu(x.handle));
export const dropout = (x: Tensor, p: number, training: boolean): Tensor => wrap(native.dropout(x.handle, p, training));

export interface PoolArgs { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean; countIncludePad?: boolean }
export function maxPool2d(x: Tensor, kernel: Pair, o: PoolArgs = {}): Tensor {
  return wrap(native.maxPool2d(x.handle, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
}
export function avgPool2d(x: Tensor, kernel: Pair, o: PoolArgs = {}): Tensor {
  return wrap(native.avgPool2d(x.handle, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true));
}
export const adaptiveAvgPool2d = (x: Tensor, out: Pair): Tensor => wrap(native.adaptiveAvgPool2d(x.handle, pair(out)));
export const adaptiveMaxPool2d = (x: Tensor, out: Pair): Tensor => wrap(native.adaptiveMaxPool2d(x.handle, pair(out)));

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
