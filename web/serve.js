#!/usr/bin/env node
// Serves the early-exit demo on 127.0.0.1: `node web/serve.js --model DIR [--port N]`
// (the same as `ztw serve-demo`). Needs the compiled TypeScript (npm run build).
'use strict';
const path = require('node:path');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const model = arg('--model', process.env.ZTW_DEMO_MODEL);
if (!model) {
  console.error('usage: node web/serve.js --model <exported model folder> [--port 8080]\n(export one with `ztw export --run <run folder> --out <folder>`)');
  process.exit(2);
}
let serve;
try {
  serve = require(path.join(__dirname, '..', 'dist', 'src', 'export', 'serve.js'));
} catch (e) {
  console.error(`web/serve.js: build the project first (npm run build): ${e.message}`);
  process.exit(1);
}
serve
  .startDemoServer({ modelDir: model, port: Number(arg('--port', '8080')) })
  .then((s) => {
    console.log(`demo at ${s.url} (Ctrl-C to stop)`);
    const stop = () => s.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  })
  .catch((e) => {
    console.error(`web/serve.js: ${e.message}`);
    process.exit(1);
  });
