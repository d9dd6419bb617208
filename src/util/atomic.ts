/**
 * Crash-safe file output: a reader never sees a half-written file, because data goes to a
 * temporary sibling (same directory, hence same filesystem, so rename is atomic) that is
 * fsynced and then renamed over the target. On any failure the temporary is removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export type FileData = string | Uint8Array | ReadonlyArray<string | Uint8Array>;

/** A temporary name next to `target`; the prefix marks it as ours and as garbage if left over. */
export function tmpSibling(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // Best effort: the original error is the one worth reporting.
  }
}

function fsyncDir(dir: string): void {
  // Makes the rename itself durable; not supported on every platform (e.g. Windows), so optional.
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* ignore */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAll(fd: number, chunk: string | Uint8Array): void {
  if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
    throw new TypeError(`writeFileAtomic: chunks must be strings or Uint8Arrays, got ${typeof chunk}`);
  }
  const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
  // writeSync may write less than asked (and is capped near 2 GiB per call), so loop.
  const MAX = 1 << 30;
  let off = 0;
  while (off < buf.byteLength) {
    const len = Math.min(MAX, buf.byteLength - off);
    off += fs.writeSync(fd, buf, off, len);
  }
}

/**
 * Writes `data` (one buffer/string or a list of chunks written in order) to `target` atomically.
 * Creates the parent directory if needed.
 */
export function writeFileAtomic(target: string, data: FileData, opts: { mode?: number } = {}): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
    const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
    for (const c of chunks) writeAll(fd, c);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* ignore */
      }
    }
    removeQuietly(tmp);
    throw err;
  }
  fsyncDir(path.dirname(target));
}

/**
 * Runs `produce(tmpPath)` which must create the file at tmpPath (e.g. by streaming a download),
 * then fsyncs and renames it to `target`. If `produce` throws, the temporary is removed and the
 * error propagates; `target` is left untouched.
 */
export async function withAtomicFile<T>(target: string, produce: (tmpPath: string) => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  try {
    const result = await produce(tmp);
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    fsyncDir(path.dirname(target));
    return result;
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/**
 * Builds a directory atomically: `produce(tmpDir)` fills a temporary sibling directory which is
 * then renamed to `target`. Fails if `target` already exists (a directory cannot be replaced
 * atomically), unless `replace` is set, in which case the old one is removed first (not atomic).
 */
export async function atomicDir<T>(
  target: string,
  produce: (tmpDir: string) => Promise<T> | T,
  opts: { replace?: boolean } = {},
): Promise<T> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tmpSibling(target);
  fs.mkdirSync(tmp);
  try {
    const result = await produce(tmp);
    if (fs.existsSync(target)) {
      if (!opts.replace) throw new Error(`atomicDir: target already exists: ${target}`);
      fs.rmSync(target, { recursive: true, force: true });
    }
    fs.renameSync(tmp, target);
    fsyncDir(path.dirname(target));
    return result;
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/** Removes temporaries left by a crashed process (names made by tmpSibling) in `dir`. */
export function cleanStaleTemporaries(dir: string, opts: { olderThanMs?: number } = {}): number {
  const olderThan = opts.olderThanMs ?? 60 * 60 * 1000;
  let removed = 0;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  const now = Date.now();
  for (const name of entries) {
    if (!/^\..+\.tmp-\d+-[0-9a-f]{8}$/.test(name)) continue;
    const p = path.join(dir, name);
    try {
      if (now - fs.statSync(p).mtimeMs > olderThan) {
        removeQuietly(p);
        removed++;
      }
    } catch {
      /* raced with another cleaner */
    }
  }
  return removed;
}
