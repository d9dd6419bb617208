#!/usr/bin/env node
// The `ztw` command: compiled TypeScript in dist/ (built by `npm run build`).
'use strict';
const path = require('node:path');
const main = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
try {
  require.resolve(main);
} catch {
  console.error('ztw: not built yet. Run `npm run build` (or `npm install`) in ' + path.join(__dirname, '..'));
  process.exit(1);
}
require(main).main(process.argv).catch((e) => {
  console.error(`ztw: ${e && e.message ? e.message : e}`);
  if (process.env.ZTW_DEBUG) console.error(e);
  process.exit(1);
});
