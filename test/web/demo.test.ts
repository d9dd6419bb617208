// The browser demo end to end: a small exported Fashion-MNIST-shaped model,
// the demo server, Debian's Chromium (headless, driven by playwright-core):
// pick an item, move the tau slider, draw, and check the page's answers
// against the Node runtime; then a screenshot, checked for size and content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyNetwork, FASHION_CLASSES } from '../export/model';
import { exportEarlyExit } from '../../src/export/export';
import { startDemoServer, coreAsEsModule } from '../../src/export/serve';
import { loadOnnxEarlyExit, preprocessPixels } from '../../src/runtime/onnx';
import { decodePng } from './png';

const CHROMIUM = process.env.ZTW_CHROMIUM ?? '/usr/bin/chromium';
const VIEWPORT = { width: 1200, height: 860 };
const SHOT = process.env.ZTW_DEMO_SCREENSHOT ?? path.join(os.tmpdir(), 'ztw-demo-screenshot.png');

test('the browser demo answers, exits earlier as tau drops, and draws', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM))
    assert.fail(`Chromium is missing at ${CHROMIUM}: the browser test needs Debian's chromium (apt-get install -y chromium), or ZTW_CHROMIUM=/path/to/chromium`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { chromium } = require('playwright-core') as typeof import('playwright-core');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-web-'));
  // One hook that undoes everything in reverse order: the profile folder can
  // only go once Chromium has exited (removing it first failed, and the hook
  // failure then left the browser running and the test process hanging).
  const cleanups: (() => unknown)[] = [() => fs.rmSync(tmp, { recursive: true, force: true })];
  t.after(async () => {
    for (const undo of cleanups.reverse()) await undo();
  });
  const modelDir = path.join(tmp, 'model');
  const { net, ensembles } = tinyNetwork({ seed: 7 });
  const pre = { scale: 1 / 255, mean: [0.2190], std: [0.3316], sourceShape: [1, 28, 28], pad: 2 };
  const { manifest } = exportEarlyExit({ net, ensembles, outDir: modelDir, classNames: FASHION_CLASSES, preprocess: pre, method: 'ztw', policy: { kind: 'confidence', tau: 0.5 } });
  const M = manifest.exits.length;

  const server = await startDemoServer({ modelDir });
  cleanups.push(() => server.close());
  const context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: VIEWPORT,
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });

  await page.goto(server.url);
  const runs = async (): Promise<number> => Number((await page.locator('#answer').getAttribute('data-run')) ?? 0);
  const settled = async (after: number): Promise<void> => {
    try {
      await page.waitForFunction((n) => {
        const doc = (globalThis as any).document; // eslint-disable-line @typescript-eslint/no-explicit-any
        return Number(doc.getElementById('answer')?.dataset.run ?? 0) > n && doc.getElementById('status')?.dataset.state !== 'loading';
      }, after, { timeout: 30_000 });
    } catch (e) {
      throw new Error(`the page did not answer: status '${await page.locator('#status').textContent()}', errors: ${errors.join(' | ') || 'none'} (${(e as Error).message})`);
    }
    // The slider and the drawing may queue one more run; wait until quiet.
    let last = await runs();
    for (;;) {
      await page.waitForTimeout(150);
      const now = await runs();
      if (now === last) return;
      last = now;
    }
  };
  const read = async () => ({
    answer: (await page.locator('#answer').textContent()) ?? '',
    cls: Number(await page.locator('#answer').getAttribute('data-class')),
    exit: Number(await page.locator('#exit').getAttribute('data-exit')),
    exitText: (await page.locator('#exit').textContent()) ?? '',
    fraction: Number(await page.locator('#saved').getAttribute('data-fraction')),
    savedText: (await page.locator('#saved').textContent()) ?? '',
    rows: await page.locator('#exits-table tbody tr').count(),
  });

  await settled(0);
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'ready', `status: ${await page.locator('#status').textContent()}`);
  assert.equal(await page.locator('#samples button').count(), 20);
  assert.match((await page.locator('#model-info').textContent()) ?? '', /and the one-image model\) loaded/, 'the page runs the one-image graph for its answers');
  assert.equal((await read()).rows, M);

  // Pick an item; the page's answer is the Node runtime's on the same pixels.
  const samples = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'web', 'samples.json'), 'utf8'));
  let n = await runs();
  await page.locator('#samples button[data-index="3"]').click();
  await settled(n);
  assert.equal(await page.locator('#samples button[data-index="3"]').getAttribute('aria-pressed'), 'true');
  const picked = await read();
  assert.ok(FASHION_CLASSES.includes(picked.answer), picked.answer);
  const rt = await loadOnnxEarlyExit(modelDir, { threads: 1 });
  cleanups.push(() => rt.release());
  const x = preprocessPixels(Buffer.from(samples.samples[3].pixels, 'base64'), manifest);
  const node = await rt.run(x, { kind: 'confidence', tau: 0.5 });
  assert.equal(picked.cls, node.prediction[0]);
  assert.equal(picked.exit, node.exitIndex[0]);

  // tau 0: every sample leaves at the first exit; tau 1: none leaves early.
  n = await runs();
  await page.locator('#tau').fill('0');
  await settled(n);
  const low = await read();
  assert.equal(await page.locator('#tau-value').textContent(), '0.00');
  assert.equal(low.exit, 0);
  assert.match(low.exitText, /exit 1 of/);
  assert.match(low.savedText, /saved/);
  n = await runs();
  await page.locator('#tau').fill('1');
  await settled(n);
  const high = await read();
  assert.equal(high.exit, M - 1);
  assert.match(high.exitText, new RegExp(`exit ${M} of ${M}`));
  assert.ok(low.fraction < high.fraction, `cost fraction at tau 0 (${low.fraction}) < at tau 1 (${high.fraction})`);
  assert.equal(await page.locator('#exits-table tbody tr.skipped').count(), 0);
  n = await runs();
  await page.locator('#tau').fill('0');
  await settled(n);
  assert.equal(await page.locator('#exits-table tbody tr.skipped').count(), M - 1);
  assert.equal(await page.locator('#exits-table tbody tr.chosen').count(), 1);

  // Draw a stroke: the item selection clears and the answer is recomputed.
  n = await runs();
  const box = (await page.locator('#draw').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * (0.3 + 0.04 * i), box.y + box.height * (0.2 + 0.06 * i));
  await page.mouse.up();
  await settled(n);
  assert.equal(await page.locator('#samples button[aria-pressed="true"]').count(), 0);
  const drawn = await page.evaluate(() => {
    const cv = (globalThis as any).document.getElementById('draw'); // eslint-disable-line @typescript-eslint/no-explicit-any
    const d: Uint8ClampedArray = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 0) lit++;
    return lit;
  });
  assert.ok(drawn > 10, `the stroke lit ${drawn} pixels`);
  assert.ok(FASHION_CLASSES.includes((await read()).answer));

  // Back to a test item at the exported tau, for the screenshot.
  n = await runs();
  await page.locator('#tau').fill('0.5');
  await page.locator('#samples button[data-index="9"]').click();
  await settled(n);
  const png = await page.screenshot({ fullPage: false });
  fs.writeFileSync(SHOT, png);
  const img = decodePng(png);
  assert.equal(img.width, VIEWPORT.width);
  assert.equal(img.height, VIEWPORT.height);
  const colours = new Set<number>();
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < img.width * img.height; i += 7) {
    const [r, g, b] = [img.rgba[4 * i], img.rgba[4 * i + 1], img.rgba[4 * i + 2]];
    colours.add((r << 16) | (g << 8) | b);
    const v = (r + g + b) / 3;
    sum += v;
    sq += v * v;
  }
  const count = Math.ceil((img.width * img.height) / 7);
  const sd = Math.sqrt(sq / count - (sum / count) ** 2);
  assert.ok(colours.size > 50, `screenshot has ${colours.size} colours`);
  assert.ok(sd > 10, `screenshot brightness varies (sd ${sd.toFixed(1)})`);
  assert.deepEqual(errors, [], `page errors: ${errors.join(' | ')}`);
});

test('the demo server: loopback only, model files from the manifest only, the core as an ES module', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-web-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const { net, ensembles } = tinyNetwork({ seed: 3 });
  exportEarlyExit({ net, ensembles, outDir: tmp, classNames: FASHION_CLASSES });
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'no');
  await assert.rejects(startDemoServer({ modelDir: tmp, host: '0.0.0.0' }), /loopback/);
  await assert.rejects(startDemoServer({ modelDir: path.join(tmp, 'nope') }), /does not exist/);
  const s = await startDemoServer({ modelDir: tmp });
  t.after(() => s.close());
  assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const get = async (p: string) => {
    const r = await fetch(s.url + p.replace(/^\//, ''));
    return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
  };
  assert.equal((await get('/')).status, 200);
  assert.match((await get('/')).body, /<canvas id="draw"/);
  assert.equal((await get('/model/manifest.json')).status, 200);
  assert.equal((await get('/model/exit_0.onnx')).status, 200);
  assert.equal((await get('/model/early-exit-1.onnx')).status, 200, 'the one-graph models are served');
  assert.equal((await get('/model/secret.txt')).status, 404);
  assert.equal((await get('/model/../package.json')).status, 404);
  assert.equal((await get('/model/%2e%2e%2fpackage.json')).status, 404);
  assert.equal((await get('/model/%E0%A4%A')).status, 400);
  assert.equal((await get('/serve.js')).status, 404);
  assert.equal((await get('/ort/ort.wasm.min.js')).status, 200);
  assert.equal((await get('/ort/ort-wasm-simd-threaded.wasm')).type, 'application/wasm');
  assert.equal((await get('/ort/package.json')).status, 404);
  const core = await get('/lib/onnx-core.js');
  assert.match(core.type, /javascript/);
  assert.match(core.body, /export const \{[^}]*OnnxEarlyExitRuntime/);
  // One self-contained ES module: it loads on its own and requires nothing but what it carries.
  assert.doesNotMatch(core.body, /require\((?!name\)|"\.\.\/exits\/combine"\))/);
  const mod = await import(`data:text/javascript;base64,${Buffer.from(coreAsEsModule()).toString('base64')}`);
  assert.equal(typeof mod.OnnxEarlyExitRuntime, 'function');
  assert.equal(typeof mod.validateManifest, 'function');
  const r = await fetch(s.url, { method: 'POST' });
  assert.equal(r.status, 405);
});
