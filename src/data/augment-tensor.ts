/**
 * The training augmentation of augment.ts on a batch tensor: uint8 images
 * [N, C, H, W] in, normalised float32 out, each image with its own drawn
 * parameters (sampleAugment: the same seeded draws, so both paths see the
 * same crops, flips and jitter). Crop and flip are one gather per axis from
 * the zero-padded batch; colour jitter runs batched per position in each
 * image's random order; then per-channel normalisation. About twenty native
 * calls per batch, whatever its size.
 */
import type { AugmentParams } from './augment';
import type { NormStats } from './types';
import { tensor } from '../tensor/create';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

const GREY = [0.299, 0.587, 0.114];

/** Per-image factors as an [N, 1, 1, 1] tensor. */
const perImage = (v: number[]): Tensor => tensor(v, [v.length, 1, 1, 1]);

/** ITU-R 601 luma [N, 1, H, W] of a [0, 1] RGB batch (the image itself when grey). */
function luma(x: Tensor): Tensor {
  if (x.shape[1] !== 3) return x;
  return x.narrow(1, 0, 1).mul(GREY[0]).add(x.narrow(1, 1, 1).mul(GREY[1])).add(x.narrow(1, 2, 1).mul(GREY[2]));
}

export function augmentBatchTensor(images: Tensor, params: AugmentParams[], norm: NormStats): Tensor {
  if (images.dtype !== 'uint8' || images.ndim !== 4) throw new TypeError(`augmentBatchTensor: expected uint8 [N, C, H, W] images, got ${images.dtype} [${images.shape}]`);
  const [N, C, H, W] = images.shape;
  if (params.length !== N) throw new RangeError(`augmentBatchTensor: ${params.length} parameter sets for ${N} images`);
  if (norm.mean.length !== C || norm.std.length !== C) throw new RangeError(`augmentBatchTensor: normalisation for ${norm.mean.length} channels, images have ${C}`);
  return tidy(() => {
    const pad = Math.max(0, ...params.map((p) => Math.max(Math.abs(p.dy), Math.abs(p.dx))));
    // Output pixel (y, x) of image n reads padded (y + pad + dy, x' + pad + dx), x' = flip ? W-1-x : x.
    const rows = params.flatMap((p) => Array.from({ length: H }, (_, y) => y + pad + p.dy));
    const cols = params.flatMap((p) => Array.from({ length: W }, (_, x) => (p.flip ? W - 1 - x : x) + pad + p.dx));
    const padded = pad > 0 ? images.pad([pad, pad, pad, pad]) : images;
    const Wp = W + 2 * pad;
    let x = padded
      .gather(2, tensor(rows, [N, 1, H, 1], 'int64').expand(N, C, H, Wp))
      .gather(3, tensor(cols, [N, 1, 1, W], 'int64').expand(N, C, H, W))
      .to('float32')
      .div(255);
    if (params.some((p) => p.jitter)) x = colorJitter(x, params);
    const mean = tensor(norm.mean, [1, C, 1, 1]);
    const invStd = tensor(norm.std.map((s) => 1 / s), [1, C, 1, 1]);
    return x.sub(mean).mul(invStd);
  });
}

/**
 * torchvision's ColorJitter (tensor semantics) per image, in that image's
 * order: at position s every image applies its own op of that position; the
 * other two ops get factor 1, which leaves a [0, 1] image unchanged.
 */
function colorJitter(x: Tensor, params: AugmentParams[]): Tensor {
  const [, C, H, W] = x.shape;
  const factor = (s: number, op: number): number[] =>
    params.map((p) => {
      const j = p.jitter;
      if (!j || j.order[s] !== op) return 1;
      return op === 0 ? j.brightness : op === 1 ? j.contrast : j.saturation;
    });
  for (let s = 0; s < 3; s++) {
    const b = factor(s, 0);
    if (b.some((f) => f !== 1)) x = x.mul(perImage(b)).clamp(0, 1);
    const c = factor(s, 1);
    if (c.some((f) => f !== 1)) {
      const f = perImage(c);
      const m = luma(x).sum([1, 2, 3], true).div(H * W); // the mean grey level (augment.ts: sum / plane)
      x = x.mul(f).add(m.mul(f.neg().add(1))).clamp(0, 1);
    }
    const sat = factor(s, 2);
    if (C === 3 && sat.some((f) => f !== 1)) {
      const f = perImage(sat);
      x = x.mul(f).add(luma(x).mul(f.neg().add(1))).clamp(0, 1);
    }
  }
  return x;
}
