// A few test images for the browser demo, as JSON: raw pixels (the source
// size, before the loader's zero padding) in base64, with their labels.
import type { ImageDataset } from '../data/types';

export interface DemoSample {
  label: number;
  name: string;
  /** Raw pixels 0..255 of one [C, h, w] image, base64. */
  pixels: string;
}

export interface DemoSamples {
  source: string;
  /** [C, h, w] of every image. */
  shape: number[];
  samples: DemoSample[];
}

/** perClass images of each class from ds (first ones in order), with `pad` pixels cropped off each side. */
export function demoSamples(ds: ImageDataset, o: { perClass?: number; pad?: number } = {}): DemoSamples {
  const perClass = o.perClass ?? 2;
  const pad = o.pad ?? 0;
  const { c, h, w } = ds;
  const sh = h - 2 * pad;
  const sw = w - 2 * pad;
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.n; i++) if (byClass[ds.labels[i]].length < perClass) byClass[ds.labels[i]].push(i);
  // Round-robin over the classes, so the first items shown cover all of them.
  const picked: number[] = [];
  for (let r = 0; r < perClass; r++) for (const idx of byClass) if (r < idx.length) picked.push(idx[r]);
  const samples = picked.map((i) => {
    const out = new Uint8Array(c * sh * sw);
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < sh; y++)
        for (let x = 0; x < sw; x++) out[(ch * sh + y) * sw + x] = ds.images[((i * c + ch) * h + y + pad) * w + x + pad];
    return { label: ds.labels[i], name: ds.classNames[ds.labels[i]], pixels: Buffer.from(out).toString('base64') };
  });
  return { source: ds.name, shape: [c, sh, sw], samples };
}
