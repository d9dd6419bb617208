import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Normalizer, augmentImage, augmentInto, colorJitterInPlace, sampleAugment, type AugmentParams } from '../../src/data/augment';
import { Rng } from '../../src/data/rng';

/** Literal reference: zero-pad by p, crop the window at (dy+p, dx+p), then mirror rows. */
function reference(img: Uint8Array, c: number, h: number, w: number, p: number, a: AugmentParams): Float32Array {
  const H = h + 2 * p;
  const W = w + 2 * p;
  const padded = new Uint8Array(c * H * W);
  for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) padded[(ch * H + y + p) * W + x + p] = img[(ch * h + y) * w + x];
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const cx = a.flip ? w - 1 - x : x;
        out[(ch * h + y) * w + x] = padded[(ch * H + y + a.dy + p) * W + cx + a.dx + p] / 255;
      }
    }
  }
  return out;
}

const approx = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
};

test('crop and flip on a hand-made 4x4 image', () => {
  const img = Uint8Array.from({ length: 16 }, (_, i) => i + 1); // row-major 1..16
  const d = { c: 1, h: 4, w: 4 };
  const as255 = (o: Float32Array): number[] => Array.from(o, (v) => Math.round(v * 255));
  assert.deepEqual(as255(augmentImage(img, d, { dy: 0, dx: 0, flip: false })), [...img]);
  // Window moved down one row: last row comes from the zero padding.
  assert.deepEqual(as255(augmentImage(img, d, { dy: 1, dx: 0, flip: false })), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0]);
  // Window moved left one column: first column is padding.
  assert.deepEqual(as255(augmentImage(img, d, { dy: 0, dx: -1, flip: false })), [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15]);
  assert.deepEqual(as255(augmentImage(img, d, { dy: 0, dx: 0, flip: true })), [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13]);
  // Crop then flip: window shifted right by 1 is [2,3,4,0], mirrored [0,4,3,2].
  assert.deepEqual(as255(augmentImage(img, d, { dy: -1, dx: 1, flip: true })), [0, 0, 0, 0, 0, 4, 3, 2, 0, 8, 7, 6, 0, 12, 11, 10]);
});

test('crop/flip match the literal pad-crop-flip reference for every offset (3 channels, non-square)', () => {
  const c = 3, h = 5, w = 4, p = 2;
  const img = Uint8Array.from({ length: c * h * w }, (_, i) => (i * 7 + 3) & 255);
  for (let dy = -p; dy <= p; dy++) {
    for (let dx = -p; dx <= p; dx++) {
      for (const flip of [false, true]) {
        const a = { dy, dx, flip };
        approx(augmentImage(img, { c, h, w }, a), reference(img, c, h, w, p, a));
      }
    }
  }
});

test('normalisation per channel, including padded pixels (-mean/std)', () => {
  const img = Uint8Array.from([0, 255, 51, 102]); // 2 channels, 1x2
  const norm = new Normalizer({ mean: [0.5, 0.2], std: [0.25, 0.5] }, 2);
  const out = augmentImage(img, { c: 2, h: 1, w: 2 }, { dy: 0, dx: 0, flip: false }, norm);
  approx(out, [(0 - 0.5) / 0.25, (1 - 0.5) / 0.25, (0.2 - 0.2) / 0.5, (0.4 - 0.2) / 0.5], 1e-5);
  const shifted = augmentImage(img, { c: 2, h: 1, w: 2 }, { dy: 0, dx: 1, flip: false }, norm);
  approx(shifted, [(1 - 0.5) / 0.25, -0.5 / 0.25, (0.4 - 0.2) / 0.5, -0.2 / 0.5], 1e-5);
  assert.throws(() => new Normalizer({ mean: [0], std: [0] }, 1), /std must be > 0/);
  assert.throws(() => new Normalizer({ mean: [0, 0], std: [1, 1] }, 3), /for 3 channels/);
});

test('sampleAugment: ranges, same seed same draws, different seed different', () => {
  const spec = { cropPadding: 4, flip: true };
  const draw = (seed: number): AugmentParams[] => {
    const r = new Rng(seed);
    return Array.from({ length: 200 }, () => sampleAugment(r, spec));
  };
  const a = draw(3);
  assert.deepEqual(a, draw(3));
  assert.notDeepEqual(a, draw(4));
  const dys = new Set(a.map((p) => p.dy));
  assert.deepEqual([...dys].sort((x, y) => x - y), [-4, -3, -2, -1, 0, 1, 2, 3, 4]);
  assert.ok(a.some((p) => p.flip) && a.some((p) => !p.flip));
  const none = sampleAugment(new Rng(1), { cropPadding: 0, flip: false });
  assert.deepEqual(none, { dy: 0, dx: 0, flip: false });
  const j = sampleAugment(new Rng(1), { cropPadding: 8, flip: true, colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 } });
  assert.ok(j.jitter && j.jitter.brightness >= 0.8 && j.jitter.brightness <= 1.2);
  assert.deepEqual([...j.jitter!.order].sort(), [0, 1, 2]);
});

test('colour jitter: brightness clamps, contrast blends to grey mean, saturation keeps greys', () => {
  const d = { c: 3, h: 1, w: 2 };
  const img = Float32Array.from([0.5, 0.9, 0.2, 0.4, 0.1, 0.6]); // R plane, G plane, B plane
  const b = img.slice();
  colorJitterInPlace(b, d, { brightness: 1.2, contrast: 1, saturation: 1, order: [0, 1, 2] });
  approx(b, [0.6, 1, 0.24, 0.48, 0.12, 0.72], 1e-6);
  const c = img.slice();
  colorJitterInPlace(c, d, { brightness: 1, contrast: 0, saturation: 1, order: [1] });
  const grey = (0.299 * 0.5 + 0.587 * 0.2 + 0.114 * 0.1 + 0.299 * 0.9 + 0.587 * 0.4 + 0.114 * 0.6) / 2;
  approx(c, new Array(6).fill(grey), 1e-6);
  const g = Float32Array.from([0.3, 0.7, 0.3, 0.7, 0.3, 0.7]); // two grey pixels
  const s = g.slice();
  colorJitterInPlace(s, d, { brightness: 1, contrast: 1, saturation: 0.5, order: [2] });
  approx(s, g, 1e-6);
  // Through augmentInto: jitter path writes normalised values at the right offset.
  const u8 = Uint8Array.from([255, 255, 0, 0, 0, 0]);
  const out = new Float32Array(12).fill(7);
  augmentInto(u8, 0, d, { dy: 0, dx: 0, flip: false, jitter: { brightness: 0.5, contrast: 1, saturation: 1, order: [0, 1, 2] } }, Normalizer.identity(3), out, 6);
  approx(out, [7, 7, 7, 7, 7, 7, 0.5, 0.5, 0, 0, 0, 0], 1e-6);
});
