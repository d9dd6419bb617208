// The browser demo's static server (node:http, loopback only): the page from
// web/, onnxruntime-web's script and wasm files from node_modules, the
// exported model folder under /model/, and the runtime core (compiled
// onnx-core.js, CommonJS) wrapped as an ES module under /lib/.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { graphFiles, readManifest } from '../runtime/onnx';

export const WEB_DIR = path.resolve(__dirname, '..', '..', '..', 'web');
const CORE_JS = path.resolve(__dirname, '..', 'runtime', 'onnx-core.js');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export interface DemoServerOptions {
  /** Exported model folder (manifest.json + .onnx files). */
  modelDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Loopback only: 127.0.0.1 (default), ::1 or localhost. */
  host?: string;
  log?: (line: string) => void;
}

export interface DemoServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function ortDistDir(): string {
  // The package's "require" entry lives in dist/, next to the wasm files.
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch (e) {
    throw new Error(`onnxruntime-web is not installed (npm install onnxruntime-web): ${(e as Error).message}`);
  }
  const dist = path.dirname(entry);
  if (!fs.existsSync(path.join(dist, 'ort.min.js'))) throw new Error(`onnxruntime-web: no ort.min.js in ${dist}`);
  return dist;
}

/** The modules the browser core may require, compiled, by the name it requires them with. */
const CORE_DEPENDENCIES: Record<string, string> = { '../exits/combine': path.resolve(__dirname, '..', 'exits', 'combine.js') };

/**
 * The compiled runtime core as one ES module: onnx-core.js and the
 * import-free modules it requires (CORE_DEPENDENCIES), each wrapped in a
 * CommonJS shell.
 */
export function coreAsEsModule(file = CORE_JS): string {
  const source = (f: string): string => {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build the TypeScript first (npx tsc -p .)`);
    return fs.readFileSync(f, 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
  };
  const shell = (code: string): string => ['(() => {', 'const module = { exports: {} };', 'const exports = module.exports;', code, 'return module.exports;', '})()'].join('\n');
  const code = source(file);
  const required = [...new Set([...code.matchAll(/\brequire\(([^)]*)\)/g)].map((m) => m[1]))];
  const deps = required.map((arg) => {
    const name = /^"([^"]+)"$/.exec(arg)?.[1];
    if (!name || !CORE_DEPENDENCIES[name]) throw new Error(`${file} requires ${arg}; the browser core may only require ${Object.keys(CORE_DEPENDENCIES).join(', ')}`);
    const dep = source(CORE_DEPENDENCIES[name]);
    if (/\brequire\(/.test(dep)) throw new Error(`${CORE_DEPENDENCIES[name]} has a runtime require(); the browser core's modules must only import types`);
    return `${JSON.stringify(name)}: ${shell(dep)},`;
  });
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const names = Object.keys(require(file)).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
  return [
    `const __deps = {\n${deps.join('\n')}\n};`,
    'const require = (name) => __deps[name];',
    `const __core = ${shell(code)};`,
    `export const { ${names.join(', ')} } = __core;`,
    'export default __core;',
    '',
  ].join('\n');
}

export async function startDemoServer(o: DemoServerOptions): Promise<DemoServer> {
  const host = o.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`serve-demo: host must be a loopback address (127.0.0.1, ::1 or localhost), got ${host}`);
  const manifest = readManifest(o.modelDir); // fails early on a bad folder
  const modelFiles = new Set(['manifest.json', ...graphFiles(manifest)]);
  // The model's own sample images (ztw export writes them from its data set), else the demo's Fashion-MNIST ones.
  const samplesFile = fs.existsSync(path.join(o.modelDir, 'samples.json')) ? path.join(o.modelDir, 'samples.json') : path.join(WEB_DIR, 'samples.json');
  const ortDir = ortDistDir();
  const core = coreAsEsModule();
  const webFiles = new Set(fs.readdirSync(WEB_DIR).filter((f) => TYPES[path.extname(f)] && f !== 'serve.js'));
  const log = o.log ?? (() => undefined);

  const server = http.createServer((req, res) => {
    const send = (status: number, body: string | Buffer, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const file = (p: string): void => {
      fs.readFile(p, (err, data) => (err ? send(404, 'not found\n') : send(200, data, TYPES[path.extname(p)] ?? 'application/octet-stream')));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let p: string;
    try {
      p = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    log(`${req.method} ${p}`);
    if (p === '/') return file(path.join(WEB_DIR, 'index.html'));
    if (p === '/lib/onnx-core.js') return send(200, core, TYPES['.js']);
    if (p === '/favicon.ico') return send(204, '');
    const [, dir, name, ...rest] = p.split('/');
    if (rest.length || !name) {
      if (!rest.length && webFiles.has(dir)) return file(path.join(WEB_DIR, dir));
      return send(404, 'not found\n');
    }
    if (dir === 'model' && name === 'samples.json') return file(samplesFile);
    if (dir === 'model' && modelFiles.has(name)) return file(path.join(o.modelDir, name));
    if (dir === 'ort' && /^ort[\w.-]*\.(js|mjs|wasm)$/.test(name)) return file(path.join(ortDir, name));
    return send(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host === '::1' ? '[::1]' : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
