/**
 * HTTP(S) download with MD5 verification, a progress bar, and atomic placement: the file only
 * appears under its final name once complete and verified; on any failure nothing is left.
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { withAtomicFile } from '../util/atomic';
import { createProgress } from '../util/progress';

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Expected MD5 (hex); verified before the file is moved into place. */
  md5?: string;
  silent?: boolean;
  /** Abort if no data arrives for this long; default 60 s. */
  idleTimeoutMs?: number;
}

export async function md5File(file: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

export async function downloadFile(opts: DownloadOptions): Promise<{ path: string; bytes: number; md5: string }> {
  const idle = opts.idleTimeoutMs ?? 60_000;
  return withAtomicFile(opts.dest, async (tmp) => {
    const ctrl = new AbortController();
    let timer = setTimeout(() => ctrl.abort(), idle);
    const kick = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => ctrl.abort(), idle);
    };
    const fh = await fs.promises.open(tmp, 'wx');
    const hash = createHash('md5');
    let bytes = 0;
    const progress = createProgress({ label: `download ${opts.url}`, unit: 'MB', silent: opts.silent });
    try {
      let res: Response;
      try {
        res = await fetch(opts.url, { signal: ctrl.signal, redirect: 'follow' });
      } catch (e) {
        throw new Error(`download of ${opts.url} failed: ${(e as Error).message}${(e as Error).cause ? ` (${String((e as Error).cause)})` : ''}`);
      }
      if (!res.ok || !res.body) throw new Error(`download of ${opts.url} failed: HTTP ${res.status} ${res.statusText}`);
      const total = Number(res.headers.get('content-length') ?? 0);
      if (total > 0) progress.setTotal(Math.ceil(total / 1048576));
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          kick();
          hash.update(chunk);
          await fh.write(chunk);
          bytes += chunk.byteLength;
          progress.update(Math.floor(bytes / 1048576));
        }
      } catch (e) {
        throw new Error(`download of ${opts.url} interrupted after ${bytes} bytes: ${(e as Error).message}`);
      }
      if (total > 0 && bytes !== total) {
        throw new Error(`download of ${opts.url} is incomplete: got ${bytes} of ${total} bytes`);
      }
    } finally {
      clearTimeout(timer);
      progress.stop();
      await fh.close();
    }
    const md5 = hash.digest('hex');
    if (opts.md5 && md5.toLowerCase() !== opts.md5.toLowerCase()) {
      throw new Error(`checksum mismatch for ${opts.url}: md5 ${md5}, expected ${opts.md5} (file discarded)`);
    }
    return { path: opts.dest, bytes, md5 };
  });
}
