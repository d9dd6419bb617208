/**
 * Decoding of JPEG (jpeg-js) and PNG (a small built-in decoder: 8/16-bit grey, grey+alpha, RGB,
 * RGBA, palette; not interlaced) into planar uint8 CHW with 1 or 3 channels. Alpha is dropped.
 */
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as jpeg from 'jpeg-js';

export interface DecodedImage {
  /** Planar c x h x w bytes. */
  data: Uint8Array;
  c: number;
  h: number;
  w: number;
}

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

export function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Interleaved RGB -> planar with the requested channel count (1 = luma, ITU-R 601 as PIL 'L'). */
function toPlanar(rgb: Uint8Array, w: number, h: number, channels: 1 | 3, out?: Uint8Array): Uint8Array {
  const plane = w * h;
  const dst = out ?? new Uint8Array(channels * plane);
  if (channels === 3) {
    for (let p = 0, q = 0; p < plane; p++, q += 3) {
      dst[p] = rgb[q];
      dst[plane + p] = rgb[q + 1];
      dst[2 * plane + p] = rgb[q + 2];
    }
  } else {
    for (let p = 0, q = 0; p < plane; p++, q += 3) {
      dst[p] = (rgb[q] * 299 + rgb[q + 1] * 587 + rgb[q + 2] * 114 + 500) / 1000;
    }
  }
  return dst;
}

function decodeJpegRgb(buf: Uint8Array, file: string): { rgb: Uint8Array; w: number; h: number } {
  try {
    const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false });
    return { rgb: img.data, w: img.width, h: img.height };
  } catch (e) {
    throw new Error(`cannot decode JPEG ${file}: ${(e as Error).message}`);
  }
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePngRgb(buf: Uint8Array, file: string): { rgb: Uint8Array; w: number; h: number } {
  const fail = (why: string): Error => new Error(`cannot decode PNG ${file}: ${why}`);
  if (buf.length < 8 || PNG_SIG.some((b, i) => buf[i] !== b)) throw fail('bad signature');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 8;
  let w = 0, h = 0, depth = 0, ctype = 0, interlace = 0;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  while (off + 8 <= buf.length) {
    const len = dv.getUint32(off);
    const type = String.fromCharCode(buf[off + 4], buf[off + 5], buf[off + 6], buf[off + 7]);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (body.length !== len) throw fail(`truncated ${type} chunk`);
    if (type === 'IHDR') {
      w = dv.getUint32(off + 8);
      h = dv.getUint32(off + 12);
      depth = buf[off + 16];
      ctype = buf[off + 17];
      interlace = buf[off + 20];
    } else if (type === 'PLTE') palette = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  if (!w || !h) throw fail('missing IHDR');
  if (interlace) throw fail('interlaced PNGs are not supported');
  const spp = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[ctype];
  if (!spp) throw fail(`unknown colour type ${ctype}`);
  if (!(depth === 8 || depth === 16 || (ctype === 3 && (depth === 1 || depth === 2 || depth === 4)))) {
    throw fail(`bit depth ${depth} with colour type ${ctype} is not supported`);
  }
  if (ctype === 3 && !palette) throw fail('palette image without PLTE');
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw fail(`corrupt image data (${(e as Error).message})`);
  }
  const bpp = Math.max(1, (spp * depth) >> 3); // bytes per complete pixel, for filtering
  const stride = Math.ceil((w * spp * depth) / 8);
  if (raw.length < h * (stride + 1)) throw fail('truncated image data');
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const ft = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      const x = line[i];
      let v: number;
      switch (ft) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: v = x + paeth(a, b, c); break;
        default: throw fail(`bad filter type ${ft} on row ${y}`);
      }
      cur[i] = v & 255;
    }
    // Sample s of pixel px (16-bit: keep the high byte).
    const sample = (px: number, s: number): number => {
      if (depth === 8) return cur[px * spp + s];
      if (depth === 16) return cur[(px * spp + s) * 2];
      const bitPos = px * depth;
      return (cur[bitPos >> 3] >> (8 - depth - (bitPos & 7))) & ((1 << depth) - 1);
    };
    for (let px = 0; px < w; px++) {
      const o = (y * w + px) * 3;
      if (ctype === 0 || ctype === 4) {
        const g = sample(px, 0);
        rgb[o] = rgb[o + 1] = rgb[o + 2] = g;
      } else if (ctype === 3) {
        const idx = sample(px, 0);
        if (3 * idx + 2 >= palette!.length) throw fail(`palette index ${idx} out of range`);
        rgb[o] = palette![3 * idx];
        rgb[o + 1] = palette![3 * idx + 1];
        rgb[o + 2] = palette![3 * idx + 2];
      } else {
        rgb[o] = sample(px, 0);
        rgb[o + 1] = sample(px, 1);
        rgb[o + 2] = sample(px, 2);
      }
    }
    prev.set(cur);
  }
  return { rgb, w, h };
}

/**
 * Decodes a JPEG or PNG (by content, not extension) to planar CHW. If `expect` is given, an image
 * of another size is an error naming the file.
 */
export function decodeImage(
  buf: Uint8Array,
  file: string,
  opts: { channels?: 1 | 3; expect?: { h: number; w: number }; out?: Uint8Array } = {},
): DecodedImage {
  const channels = opts.channels ?? 3;
  let dec: { rgb: Uint8Array; w: number; h: number };
  if (buf[0] === 0xff && buf[1] === 0xd8) dec = decodeJpegRgb(buf, file);
  else if (buf[0] === 0x89 && buf[1] === 0x50) dec = decodePngRgb(buf, file);
  else throw new Error(`cannot decode ${file}: not a JPEG or PNG file`);
  if (opts.expect && (dec.w !== opts.expect.w || dec.h !== opts.expect.h)) {
    throw new Error(`image ${file} is ${dec.w}x${dec.h}, expected ${opts.expect.w}x${opts.expect.h}`);
  }
  return { data: toPlanar(dec.rgb, dec.w, dec.h, channels, opts.out), c: channels, h: dec.h, w: dec.w };
}
