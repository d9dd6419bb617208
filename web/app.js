// The early-exit demo: onnxruntime-web (global `ort`, from /ort/) runs the
// exported stages through the same runtime core as Node (/lib/onnx-core.js,
// served from the compiled TypeScript). Plain ES module, no build step.
import { OnnxEarlyExitRuntime, graphFiles, preprocessPixels } from '/lib/onnx-core.js';

const $ = (id) => document.getElementById(id);
const ort = globalThis.ort;

const state = {
  rt: null,
  manifest: null,
  /** Raw pixels (0..255) of the current input, [C, h, w] of the manifest's sourceShape. */
  pixels: null,
  /** Bumped whenever the input changes; the per-exit table is recomputed then. */
  inputVersion: 0,
  perExitVersion: -1,
  perExit: null,
  tau: 0.9,
  busy: false,
  pending: false,
  runs: 0,
};

function setStatus(text, kind = 'ready') {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = kind;
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}

const pct = (x) => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;

function decode64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function paint(canvas, pixels, w, h) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = pixels[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// ---- inference ----

async function infer() {
  if (state.busy) {
    state.pending = true;
    return;
  }
  state.busy = true;
  try {
    const { rt, manifest } = state;
    const x = preprocessPixels(state.pixels, manifest);
    const version = state.inputVersion;
    const t0 = performance.now();
    const res = await rt.run(x, { kind: 'confidence', tau: state.tau });
    const ms = performance.now() - t0;
    if (state.perExitVersion !== version) {
      state.perExit = await rt.allExits(x);
      state.perExitVersion = version;
    }
    render(res, ms);
  } catch (e) {
    setStatus(`inference failed: ${e.message}`, 'error');
    throw e;
  } finally {
    state.busy = false;
    if (state.pending) {
      state.pending = false;
      void infer();
    }
  }
}

function render(res, ms) {
  const m = state.manifest;
  const K = m.numClasses;
  const M = m.exits.length;
  const exit = res.exitIndex[0];
  const pred = res.prediction[0];
  const conf = res.probs[pred];
  const frac = res.cost[0] / m.costs.baseCost;
  const e = m.exits[exit];
  $('answer').textContent = m.classNames[pred];
  $('answer').dataset.class = String(pred);
  $('exit').textContent = `left at exit ${exit + 1} of ${M}${e.kind === 'final' ? ' (the full network)' : ` (after ${e.tapName})`}`;
  $('exit').dataset.exit = String(exit);
  $('saved').textContent =
    frac <= 1
      ? `${pct(frac)} of the full network's compute: ${pct(1 - frac)} saved`
      : e.kind === 'final'
        ? `the whole network plus the heads: ${pct(frac - 1)} more than the backbone alone`
        : `${pct(frac)} of the backbone's compute: here the heads cost more than the layers skipped`;
  $('saved').dataset.fraction = frac.toFixed(4);
  $('saved').classList.toggle('over', frac > 1);
  const rule = e.kind === 'final' ? 'no earlier exit was above τ' : `confidence ${conf.toFixed(3)} > τ ${state.tau.toFixed(2)}`;
  $('timing').textContent = `${rule} · ${ms.toFixed(1)} ms in onnxruntime-web (wasm), ${exit + 1} of ${M} stages run`;

  const body = $('exits-table').querySelector('tbody');
  body.replaceChildren();
  state.perExit.forEach((p, j) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (p[k] > p[best]) best = k;
    const tr = document.createElement('tr');
    tr.className = j === exit ? 'chosen' : j > exit ? 'skipped' : '';
    const ex = m.exits[j];
    const cells = [
      String(j + 1),
      ex.kind === 'final' ? 'backbone classifier' : ex.tapName,
      pct(ex.cost / m.costs.baseCost),
      m.classNames[best],
    ];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    }
    const td = document.createElement('td');
    td.className = 'num';
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.title = `${p[best].toFixed(3)}${j > exit ? ' (not computed in the early-exit run)' : ''}`;
    const fill = document.createElement('span');
    fill.style.width = `${(100 * p[best]).toFixed(1)}%`;
    const mark = document.createElement('i');
    mark.style.left = `${(100 * Math.min(1, state.tau)).toFixed(1)}%`;
    bar.append(fill, mark);
    td.append(bar, document.createTextNode(` ${p[best].toFixed(3)}`));
    tr.appendChild(td);
    body.appendChild(tr);
  });
  state.runs++;
  $('answer').dataset.run = String(state.runs);
}

// ---- input: samples and drawing ----

function setInput(pixels) {
  state.pixels = pixels;
  state.inputVersion++;
  const [, h, w] = state.manifest.preprocess.sourceShape;
  paint($('draw'), pixels, w, h);
  void infer();
}

function selectSample(i, samples, buttons) {
  buttons.forEach((b, j) => b.setAttribute('aria-pressed', String(j === i)));
  setInput(decode64(samples[i].pixels));
}

function setupSamples(list) {
  const box = $('samples');
  const [c, h, w] = state.manifest.preprocess.sourceShape;
  const usable = list && list.shape.join(',') === [c, h, w].join(',') ? list.samples : [];
  const buttons = usable.map((s, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.index = String(i);
    b.setAttribute('aria-pressed', 'false');
    b.title = s.name;
    const cv = document.createElement('canvas');
    cv.width = w;
    cv.height = h;
    paint(cv, decode64(s.pixels), w, h);
    b.append(cv, document.createTextNode(s.name));
    box.appendChild(b);
    return b;
  });
  buttons.forEach((b, i) => b.addEventListener('click', () => selectSample(i, usable, buttons)));
  if (!usable.length) box.textContent = 'no sample images for this model';
  return { usable, buttons };
}

function setupDrawing(clearButtons) {
  const cv = $('draw');
  const ctx = cv.getContext('2d', { willReadFrequently: true });
  const [, h, w] = state.manifest.preprocess.sourceShape;
  cv.width = w;
  cv.height = h;
  let drawing = false;
  let last = null;
  const at = (ev) => {
    const r = cv.getBoundingClientRect();
    return [((ev.clientX - r.left) / r.width) * w, ((ev.clientY - r.top) / r.height) * h];
  };
  const dab = ([x, y]) => {
    const rad = Number($('brush').value);
    const g = ctx.createRadialGradient(x, y, 0, x, y, rad);
    g.addColorStop(0, 'rgba(255,255,255,1)');
    g.addColorStop(0.6, 'rgba(255,255,255,0.8)');
    g.addColorStop(1, 'rgba(255,255,255,0)');
    ctx.fillStyle = g;
    ctx.beginPath();
    ctx.arc(x, y, rad, 0, 2 * Math.PI);
    ctx.fill();
  };
  const stroke = (p) => {
    if (last) {
      const steps = Math.max(1, Math.ceil(Math.hypot(p[0] - last[0], p[1] - last[1]) * 3));
      for (let s = 1; s <= steps; s++) dab([last[0] + ((p[0] - last[0]) * s) / steps, last[1] + ((p[1] - last[1]) * s) / steps]);
    } else dab(p);
    last = p;
  };
  const read = () => {
    const d = ctx.getImageData(0, 0, w, h).data;
    const px = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) px[i] = d[4 * i];
    state.pixels = px;
    state.inputVersion++;
    void infer();
  };
  cv.addEventListener('pointerdown', (ev) => {
    drawing = true;
    last = null;
    cv.setPointerCapture(ev.pointerId);
    clearButtons();
    stroke(at(ev));
    read();
  });
  cv.addEventListener('pointermove', (ev) => {
    if (!drawing) return;
    stroke(at(ev));
    read();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    read();
  };
  cv.addEventListener('pointerup', end);
  cv.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => {
    clearButtons();
    setInput(new Uint8Array(w * h));
  });
}

async function main() {
  if (!ort) throw new Error('onnxruntime-web did not load (/ort/ort.wasm.min.js)');
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = 1;
  setStatus('loading the model…', 'loading');
  const manifest = await (await fetchOk('/model/manifest.json')).json();
  if (manifest?.preprocess?.sourceShape?.[0] !== 1) throw new Error('this demo draws one-channel images; the model takes ' + JSON.stringify(manifest?.inputShape));
  const t0 = performance.now();
  // One drawing at a time: of the one-graph models only the one-image graph is needed.
  const rt = await OnnxEarlyExitRuntime.load(ort, manifest, async (f) => new Uint8Array(await (await fetchOk(`/model/${f}`)).arrayBuffer()), { executionProviders: ['wasm'] }, 'single');
  state.rt = rt;
  state.manifest = rt.manifest;
  const m = rt.manifest;
  $('model-info').textContent = `${m.arch}${m.method ? ` · ${m.method}` : ''}${m.ensemble ? ` (${m.ensemble} ensemble)` : ''} · ${m.exits.length} exits · ${m.numClasses} classes · ${graphFiles(m, 'single').size} ONNX graphs (${m.stages.length} exits${m.fused ? ' and the one-image model' : ''}) loaded in ${(performance.now() - t0).toFixed(0)} ms`;

  state.tau = m.policy.kind === 'confidence' ? Math.min(1, m.policy.tau) : 0.9;
  $('tau').value = String(state.tau);
  $('tau-value').textContent = state.tau.toFixed(2);
  $('tau').addEventListener('input', () => {
    state.tau = Number($('tau').value);
    $('tau-value').textContent = state.tau.toFixed(2);
    void infer();
  });

  const r = await fetch('/model/samples.json');
  const samples = r.ok ? await r.json() : null;
  const { usable, buttons } = setupSamples(samples);
  setupDrawing(() => buttons.forEach((b) => b.setAttribute('aria-pressed', 'false')));
  if (usable.length) selectSample(0, usable, buttons);
  else setInput(new Uint8Array(m.preprocess.sourceShape.reduce((a, b) => a * b, 1)));
  setStatus(`ready · onnxruntime-web ${ort.env.versions?.web ?? ''} (wasm)`, 'ready');
}

main().catch((e) => {
  setStatus(`error: ${e.message}`, 'error');
  console.error(e);
});
