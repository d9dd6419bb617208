/** Zero-padding of single images, used to bring 28x28 (Fashion-)MNIST to the CIFAR geometry 32x32. */

/**
 * Copies a c x h x w image (planar) into `dst` at `dstOffset` as a c x (h+2p) x (w+2p) image with
 * zero borders. `dst` must be zero in the border region (fresh Uint8Arrays are).
 */
export function padInto(
  src: ArrayLike<number>,
  srcOffset: number,
  dims: { c: number; h: number; w: number; pad: number },
  dst: Uint8Array,
  dstOffset: number,
): void {
  const { c, h, w, pad } = dims;
  const H = h + 2 * pad;
  const W = w + 2 * pad;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const s = srcOffset + (ch * h + y) * w;
      const d = dstOffset + (ch * H + y + pad) * W + pad;
      for (let x = 0; x < w; x++) dst[d + x] = src[s + x];
    }
  }
}
