// Inference fusion: a convolution followed by an eval-mode batch norm is one
// affine map, so it runs as a single convolution with folded weights
//   w' = w * gamma / sqrt(var + eps),  b' = beta + (b - mean) * gamma / sqrt(var + eps).
// The folded tensors are cached and recomputed when any source tensor
// changes (libtorch bumps a tensor's version on every in-place update).
import type { BatchNorm2d, Conv2d } from './layers';
import * as F from './functional';
import { profiling } from './profiler';
import { stampHolds, stampVersions, unwrittenSince, type VersionStamp } from '../tensor/versions';
import { isGradEnabled, noGrad } from '../tensor/grad';
import { keep } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

interface Folded { conv: Conv2d; weight: Tensor; bias: Tensor; stamp: VersionStamp }
const cache = new WeakMap<BatchNorm2d, Folded>();

function canFuse(conv: Conv2d, bn: BatchNorm2d): boolean {
  if (bn.training || !bn.runningMean || !bn.runningVar || profiling()) return false;
  // With gradients wanted for these parameters, the unfused path keeps autograd exact.
  if (isGradEnabled() && (conv.weight.requiresGrad || (bn.weight?.requiresGrad ?? false))) return false;
  return true;
}

function folded(conv: Conv2d, bn: BatchNorm2d): Folded {
  const hit = cache.get(bn);
  // While no tensor was written and no module tensor replaced, the fold holds
  // without reading its seven sources (each a Map lookup on its module).
  if (hit && hit.conv === conv && unwrittenSince(hit.stamp)) return hit;
  // libtorch's batch_norm updates the running statistics without bumping their
  // version, so a training-mode BN step is seen through num_batches_tracked.
  const sources = [conv.weight, conv.bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar, bn.numBatchesTracked].filter((t): t is Tensor => t !== undefined);
  if (hit && hit.conv === conv && stampHolds(hit.stamp, sources)) return hit;
  if (hit) {
    hit.weight.dispose();
    hit.bias.dispose();
  }
  const entry = noGrad(() => {
    const rv = bn.runningVar as Tensor;
    const rm = bn.runningMean as Tensor;
    const scale = rv.add(bn.options.eps).rsqrt();
    const gamma = bn.weight ? scale.mul(bn.weight) : scale;
    const w = conv.weight.mul(gamma.view(-1, 1, 1, 1)).contiguous(conv.weight.isContiguous('channels_last') && conv.weight.ndim === 4 ? 'channels_last' : 'contiguous');
    const shifted = conv.bias ? conv.bias.sub(rm) : rm.neg();
    let b = shifted.mul(gamma);
    if (bn.bias) b = b.add(bn.bias);
    return { conv, weight: keep(w), bias: keep(b), stamp: stampVersions(sources) };
  });
  cache.set(bn, entry);
  return entry;
}

export interface ConvEpilogue {
  /** Added to bn(conv(x)) (a residual), before the ReLU. */
  add?: Tensor;
  relu?: boolean;
  /**
   * The caller gives `add` up: the result may be written into its memory
   * (then `add` holds the result too, and the caller only disposes it).
   * Where the convolution runs fused this lets it accumulate in place,
   * which oneDNN's fastest kernel serves and a separate addend does not.
   */
  consumeAdd?: boolean;
  /**
   * x becomes relu(x) in its own memory before the convolution (in the same
   * native call when it runs fused): a staged ResNet's tap, whose ReLU the
   * block after it applies. The caller gives x's values up; without
   * gradients only.
   */
  reluInput?: boolean;
  /**
   * Read rows inRows (int32) of x, and addRows of the addend, instead of
   * copies of them (reluInput then applies on the way and x stays as it
   * is; reluAdd is the addend's ReLU): a batch narrowed after an exit.
   * Without gradients only.
   */
  inRows?: Tensor;
  addRows?: Tensor;
  reluAdd?: boolean;
  /**
   * x stays as it is without inRows too: reluInput applies on the way (the
   * caller passes reluAdd where x is also the addend). Without gradients only.
   */
  keepInput?: boolean;
}

/**
 * relu?(bn(conv(x)) + add?), as one convolution whenever that is exact for
 * the caller: with the ReLU and the residual add inside the convolution's
 * store, a ResNet block makes 3 passes over its maps instead of 5.
 */
export function convBn(conv: Conv2d, bn: BatchNorm2d, x: Tensor, epilogue: ConvEpilogue = {}): Tensor {
  const { add, relu = false, consumeAdd = false, reluInput = false, inRows, addRows, reluAdd = false, keepInput = false } = epilogue;
  if (inRows || addRows || reluAdd || keepInput) {
    if (isGradEnabled()) throw new Error('convBn: gathered inputs are for inference without gradients');
    if (!canFuse(conv, bn)) {
      // The copies the fused call would have read through, then the separate ops.
      const xs = inRows ? x.takeRows(inRows, { relu: reluInput }) : keepInput && reluInput ? F.relu(x) : x;
      const adds = add && (addRows || reluAdd) ? (addRows ? add.takeRows(addRows, { relu: reluAdd }) : F.relu(add)) : add;
      const y = convBn(conv, bn, xs, { add: adds, relu, reluInput: reluInput && xs === x });
      if (xs !== x) xs.dispose();
      if (adds !== add) adds?.dispose();
      return y;
    }
  }
  if (!canFuse(conv, bn)) {
    if (reluInput) reluInPlace(x);
    const y = conv.forward(x);
    const normed = bn.forward(y);
    y.dispose();
    return separateEpilogue(normed, epilogue);
  }
  const f = folded(conv, bn);
  const { stride, padding, dilation, groups } = conv.options;
  if (!add && !relu && !reluInput && !inRows) return F.conv2d(x, f.weight, f.bias, { stride, padding, dilation, groups });
  return F.conv2dFused(x, f.weight, f.bias, { stride, padding, dilation, groups }, { add, relu, consumeAdd, reluInput, inRows, addRows, reluAdd, keepInput });
}

function reluInPlace(x: Tensor): void {
  if (isGradEnabled()) throw new Error('convBn: reluInput is for inference without gradients');
  // relu's inPlace is a wish (a strided map gets a copy); here the block reads x again, so it must hold.
  if (!x.isContiguous(x.ndim === 4 && x.isContiguous('channels_last') ? 'channels_last' : 'contiguous')) throw new Error('convBn: reluInput needs a dense input');
  F.relu(x, { inPlace: true }).dispose(); // a second handle to x's memory
}

/**
 * relu?(conv(x) + add?) as one convolution (a residual add and a ReLU in its
 * store), for a convolution with no BN after it. With gradients wanted for
 * the convolution, or the profiler on (which counts each op), as the
 * separate ops.
 */
export function convFused(conv: Conv2d, x: Tensor, epilogue: ConvEpilogue = {}): Tensor {
  if (profiling() || (isGradEnabled() && conv.weight.requiresGrad)) return separateEpilogue(conv.forward(x), epilogue);
  const { stride, padding, dilation, groups } = conv.options;
  return F.conv2dFused(x, conv.weight, conv.bias, { stride, padding, dilation, groups }, epilogue);
}

/** The epilogue as separate ops on y, each intermediate freed once used (autograd keeps its own references). */
function separateEpilogue(y: Tensor, { add, relu = false }: ConvEpilogue): Tensor {
  const step = (next: Tensor): void => {
    y.dispose();
    y = next;
  };
  if (add) step(y.add(add));
  if (relu) step(F.relu(y));
  return y;
}
