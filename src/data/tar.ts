/** Streaming reader for (gzipped) tar archives that keeps only the wanted members in memory. */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { PassThrough, pipeline } from 'node:stream';
import * as tar from 'tar-stream';
import { createProgress } from '../util/progress';

export interface ReadTarOptions {
  /** Which members to keep, by their full name inside the archive. */
  want: (name: string) => boolean;
  silent?: boolean;
  label?: string;
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads the wanted regular-file members of a .tar or .tar.gz. Errors name the archive and say
 * whether it looks truncated or corrupt.
 */
export async function readTarMembers(file: string, opts: ReadTarOptions): Promise<Map<string, Buffer>> {
  if (!fs.existsSync(file)) throw new Error(`archive not found: ${file}`);
  const size = fs.statSync(file).size;
  const progress = createProgress({ total: Math.ceil(size / 1048576), label: opts.label ?? `reading ${file}`, unit: 'MB', silent: opts.silent });
  const out = new Map<string, Buffer>();
  const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let read = 0;
  src.on('data', (c) => {
    read += c.length;
    progress.update(Math.floor(read / 1048576));
  });
  const extract = tar.extract();
  const decoder = isGzip(file) ? zlib.createGunzip() : new PassThrough();
  const piped = new Promise<void>((resolve, reject) => pipeline(src, decoder, extract, (err) => (err ? reject(err) : resolve())));
  let sawEntry = false;
  try {
    const consume = (async () => {
      for await (const entry of extract) {
        sawEntry = true;
        const name = entry.header.name;
        if (entry.header.type === 'file' && opts.want(name)) {
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          out.set(name, Buffer.concat(chunks));
        } else {
          entry.resume();
        }
      }
    })();
    await Promise.all([piped, consume]);
  } catch (e) {
    const msg = (e as Error).message;
    const truncated = /unexpected end|premature close|end of data/i.test(msg);
    const what = !sawEntry
      ? 'not a readable tar or tar.gz archive (or truncated before the first member)'
      : truncated
        ? 'truncated'
        : 'corrupt';
    throw new Error(`archive ${file} is ${what}: ${msg}`);
  } finally {
    progress.stop();
  }
  return out;
}
