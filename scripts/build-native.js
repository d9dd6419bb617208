#!/usr/bin/env node
// Builds the libtorch addon with node-gyp, only when a native source is newer
// than the built addon (a rebuild takes minutes on 2 cores).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const out = path.join(root, 'build', 'Release', 'ztw_native.node');
const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(path.join(root, 'native', 'src')).map((f) => path.join(root, 'native', 'src', f))];
const mtime = (f) => fs.statSync(f).mtimeMs;
const stale = !fs.existsSync(out) || sources.some((f) => mtime(f) > mtime(out)) || process.env.ZTW_REBUILD === '1';
if (!stale) process.exit(0);
console.error('ztw: building the native addon (libtorch through N-API)...');
// npm ships node-gyp; npm_config_node_gyp points at it when run from an npm script.
const gyp = process.env.npm_config_node_gyp || require.resolve('node-gyp/bin/node-gyp.js', { paths: [path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')] });
const r = spawnSync(process.execPath, [gyp, 'rebuild', '-j', '2'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
