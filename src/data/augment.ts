/**
 * Training-time augmentation over uint8 CHW images, writing normalised float32 straight into a
 * batch buffer: random crop with zero padding (torchvision RandomCrop(size, padding)), horizontal
 * flip, colour jitter (torchvision ColorJitter(brightness, contrast, saturation), random order),
 * then per-channel (x/255 - mean)/std. Zero padding is applied to raw pixels (value 0), so padded
 * pixels normalise to -mean/std, exactly as pad -> ToTensor -> Normalize.
 */
import type { Rng } from './rng';
import type { AugmentSpec, NormStats } from './types';

export interface ImageDims {
  c: number;
  h: number;
  w: number;
}

/** Per-image random draws; sampling is separate from applying so tests can pin them. */
export interface AugmentParams {
  /** Source offset of the crop window relative to the unpadded image, each in [-pad, pad]. */
  dy: number;
  dx: number;
  flip: boolean;
  /** Colour jitter factors and the order of application (0 brightness, 1 contrast, 2 saturation). */
  jitter?: { brightness: number; contrast: number; saturation: number; order: number[] };
}

export const IDENTITY_PARAMS: AugmentParams = { dy: 0, dx: 0, flip: false };

/** Draws the parameters for one image. The number of draws per image is fixed by the spec. */
export function sampleAugment(rng: Rng, spec: AugmentSpec): AugmentParams {
  const p = spec.cropPadding;
  const dy = p > 0 ? rng.int(2 * p + 1) - p : 0;
  const dx = p > 0 ? rng.int(2 * p + 1) - p : 0;
  const flip = spec.flip ? rng.bool() : false;
  if (!spec.colorJitter) return { dy, dx, flip };
  const j = spec.colorJitter;
  const factor = (s: number): number => (s > 0 ? rng.uniform(Math.max(0, 1 - s), 1 + s) : 1);
  const brightness = factor(j.brightness);
  const contrast = factor(j.contrast);
  const saturation = factor(j.saturation);
  const order = rng.shuffle([0, 1, 2]);
  return { dy, dx, flip, jitter: { brightness, contrast, saturation, order } };
}

/** Precomputed per-channel lookup tables byte -> normalised float. */
export class Normalizer {
  readonly lut: Float32Array;
  readonly mean: Float32Array;
  readonly invStd: Float32Array;
  constructor(
    stats: NormStats,
    readonly c: number,
  ) {
    if (stats.mean.length !== c || stats.std.length !== c) {
      throw new Error(`Normalizer: stats have ${stats.mean.length} means / ${stats.std.length} stds for ${c} channels`);
    }
    this.lut = new Float32Array(c * 256);
    this.mean = Float32Array.from(stats.mean);
    this.invStd = Float32Array.from(stats.std, (s) => {
      if (!(s > 0)) throw new Error(`Normalizer: std must be > 0, got ${s}`);
      return 1 / s;
    });
    for (let ch = 0; ch < c; ch++) {
      for (let v = 0; v < 256; v++) this.lut[ch * 256 + v] = (v / 255 - stats.mean[ch]) / stats.std[ch];
    }
  }
  static identity(c: number): Normalizer {
    return new Normalizer({ mean: new Array(c).fill(0), std: new Array(c).fill(1) }, c);
  }
}

/**
 * Crop+flip (no jitter) of one image through the normaliser's lookup table; the fast path.
 * out[ch, y, x] = lut[src[ch, y+dy, x'+dx]] with x' = flip ? w-1-x : x, padding outside.
 */
function cropFlipLut(src: Uint8Array, srcOff: number, d: ImageDims, p: AugmentParams, norm: Normalizer, out: Float32Array, outOff: number): void {
  const { c, h, w } = d;
  const lut = norm.lut;
  for (let ch = 0; ch < c; ch++) {
    const L = ch * 256;
    const padV = lut[L];
    for (let y = 0; y < h; y++) {
      const o = outOff + (ch * h + y) * w;
      const sy = y + p.dy;
      if (sy < 0 || sy >= h) {
        out.fill(padV, o, o + w);
        continue;
      }
      const s = srcOff + (ch * h + sy) * w;
      if (!p.flip) {
        // Valid x range where 0 <= x+dx < w.
        const x0 = Math.max(0, -p.dx);
        const x1 = Math.min(w, w - p.dx);
        for (let x = 0; x < x0; x++) out[o + x] = padV;
        for (let x = x0; x < x1; x++) out[o + x] = lut[L + src[s + x + p.dx]];
        for (let x = Math.max(x1, x0); x < w; x++) out[o + x] = padV;
      } else {
        // sx = w-1-x+dx must be in [0, w): x in (dx-1, w-1+dx], i.e. [dx, w-1+dx].
        const x0 = Math.max(0, p.dx);
        const x1 = Math.min(w, w + p.dx);
        const base = s + w - 1 + p.dx;
        for (let x = 0; x < x0; x++) out[o + x] = padV;
        for (let x = x0; x < x1; x++) out[o + x] = lut[L + src[base - x]];
        for (let x = Math.max(x1, x0); x < w; x++) out[o + x] = padV;
      }
    }
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Colour jitter in place on a [0,1] CHW float image (torchvision tensor semantics). */
export function colorJitterInPlace(img: Float32Array, d: ImageDims, j: NonNullable<AugmentParams['jitter']>): void {
  const plane = d.h * d.w;
  const n = d.c * plane;
  for (const op of j.order) {
    if (op === 0) {
      const f = j.brightness;
      if (f === 1) continue;
      for (let i = 0; i < n; i++) img[i] = clamp01(img[i] * f);
    } else if (op === 1) {
      const f = j.contrast;
      if (f === 1) continue;
      let m = 0;
      if (d.c === 3) {
        for (let i = 0; i < plane; i++) m += 0.299 * img[i] + 0.587 * img[plane + i] + 0.114 * img[2 * plane + i];
      } else {
        for (let i = 0; i < n; i++) m += img[i];
      }
      m = (m / plane) * (1 - f);
      for (let i = 0; i < n; i++) img[i] = clamp01(f * img[i] + m);
    } else if (op === 2) {
      const f = j.saturation;
      if (f === 1 || d.c !== 3) continue; // greyscale images have no saturation
      for (let i = 0; i < plane; i++) {
        const g = (1 - f) * (0.299 * img[i] + 0.587 * img[plane + i] + 0.114 * img[2 * plane + i]);
        img[i] = clamp01(f * img[i] + g);
        img[plane + i] = clamp01(f * img[plane + i] + g);
        img[2 * plane + i] = clamp01(f * img[2 * plane + i] + g);
      }
    }
  }
}

/**
 * Writes one augmented, normalised image into `out` at `outOff` (c*h*w floats).
 * `scratch` (>= c*h*w floats) is needed only with colour jitter; pass one to avoid allocation.
 */
export function augmentInto(
  src: Uint8Array,
  srcOff: number,
  d: ImageDims,
  p: AugmentParams,
  norm: Normalizer,
  out: Float32Array,
  outOff: number,
  scratch?: Float32Array,
): void {
  if (!p.jitter) {
    cropFlipLut(src, srcOff, d, p, norm, out, outOff);
    return;
  }
  const n = d.c * d.h * d.w;
  const tmp = scratch && scratch.length >= n ? scratch : new Float32Array(n);
  cropFlipLut(src, srcOff, d, p, unitScale(d.c), tmp, 0);
  colorJitterInPlace(tmp, d, p.jitter);
  const plane = d.h * d.w;
  for (let ch = 0; ch < d.c; ch++) {
    const m = norm.mean[ch];
    const is = norm.invStd[ch];
    const o = outOff + ch * plane;
    const t = ch * plane;
    for (let i = 0; i < plane; i++) out[o + i] = (tmp[t + i] - m) * is;
  }
}

const unitCache = new Map<number, Normalizer>();
function unitScale(c: number): Normalizer {
  let n = unitCache.get(c);
  if (!n) unitCache.set(c, (n = Normalizer.identity(c)));
  return n;
}

/** Convenience for tests/tools: one augmented image as a new Float32Array. */
export function augmentImage(img: Uint8Array, d: ImageDims, p: AugmentParams, norm: Normalizer = unitScale(d.c)): Float32Array {
  const out = new Float32Array(d.c * d.h * d.w);
  augmentInto(img, 0, d, p, norm, out, 0);
  return out;
}
