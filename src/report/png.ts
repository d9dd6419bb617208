import * as fs from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../util/atomic';

/**
 * Font files tried in addition to the system fonts. resvg draws no text at all without a
 * font, and minimal images may have no fontconfig; DejaVu comes with fonts-dejavu-core.
 */
export const FALLBACK_FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
  '/Library/Fonts/Arial.ttf',
  'C:\\Windows\\Fonts\\arial.ttf',
];

export interface PngOptions {
  /** Output width in pixels; the height follows the SVG's aspect ratio. Default: SVG size. */
  width?: number;
  /** Extra font files to load (e.g. when the machine has no system fonts). */
  fontFiles?: readonly string[];
  background?: string;
}

/** Rasterises an SVG string to PNG bytes with resvg (no browser, no canvas). */
export function svgToPng(svg: string, options: PngOptions = {}): Buffer {
  const { width, background = '#ffffff' } = options;
  const fontFiles = [...(options.fontFiles ?? []), ...FALLBACK_FONT_FILES].filter((p) =>
    fs.existsSync(p),
  );
  const resvg = new Resvg(svg, {
    background,
    fitTo: width ? { mode: 'width', value: width } : { mode: 'original' },
    font: { loadSystemFonts: true, fontFiles, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

export function writePng(filePath: string, svg: string, options: PngOptions = {}): void {
  writeFileAtomic(filePath, svgToPng(svg, options));
}

/** Width and height from a PNG's IHDR chunk; throws if the bytes are not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || signature.some((b, i) => png[i] !== b)) throw new Error('not a PNG');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * True when resvg can find a font and actually draws text: renders a word on white and looks
 * for dark pixels. Without fonts resvg silently omits all text, so charts lose every label.
 */
export function canRenderText(options: { fontFiles?: readonly string[] } = {}): boolean {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">' +
    '<rect width="120" height="40" fill="#fff"/>' +
    '<text x="6" y="28" font-size="24" font-family="DejaVu Sans, sans-serif" fill="#000">Text</text></svg>';
  const fontFiles = [...(options.fontFiles ?? []), ...FALLBACK_FONT_FILES].filter((p) =>
    fs.existsSync(p),
  );
  const image = new Resvg(svg, {
    font: { loadSystemFonts: true, fontFiles, defaultFontFamily: 'DejaVu Sans' },
  }).render();
  const pixels = image.pixels;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) return true;
  return false;
}
