/**
 * Progress reporting for long loops (dataset conversion, downloads, training epochs).
 * On a terminal: a live cli-progress bar on stderr with ETA and custom fields (loss, acc, img/s).
 * Not on a terminal (CI, log files, piped output): a plain line every `lineIntervalMs`, and one at
 * the end, so logs stay readable. `silent: true` (or env ZTW_QUIET=1) prints nothing.
 */
import * as cliProgress from 'cli-progress';

export type ProgressFields = Record<string, string | number | undefined>;

export interface ProgressOptions {
  /** Number of steps to completion; 0 or undefined shows a bare counter. */
  total?: number;
  /** Shown before the bar, e.g. "epoch 3/100". */
  label?: string;
  /** Unit after the value in plain-line mode, e.g. "batches", "MB". */
  unit?: string;
  silent?: boolean;
  /** Defaults to process.stderr so stdout stays clean for data/JSON. */
  stream?: NodeJS.WriteStream;
  /** Plain-line mode interval (non-TTY); default 30 s. */
  lineIntervalMs?: number;
  /** Force terminal (bar) or plain-line mode; default: stream.isTTY. */
  tty?: boolean;
}

export interface Progress {
  update(value: number, fields?: ProgressFields): void;
  increment(delta?: number, fields?: ProgressFields): void;
  setTotal(total: number): void;
  /** Finishes the bar (prints the final plain line in non-TTY mode). Idempotent. */
  stop(fields?: ProgressFields): void;
}

/** Compact number formatting for fields: 4 significant digits, integers as is. */
export function formatField(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 0.001) return Number(v.toPrecision(4)).toString();
  return v.toExponential(2);
}

export function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${formatField(v as string | number)}`)
    .join(' ');
}

/** Seconds to "1h02m", "3m05s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, '0')}s`;
  return `${r}s`;
}

class SilentProgress implements Progress {
  update(): void {}
  increment(): void {}
  setTotal(): void {}
  stop(): void {}
}

class BarProgress implements Progress {
  private bar: cliProgress.SingleBar;
  private value = 0;
  private fields: ProgressFields = {};
  private stopped = false;
  constructor(opts: ProgressOptions, stream: NodeJS.WriteStream) {
    const label = opts.label ? `${opts.label} ` : '';
    const hasTotal = (opts.total ?? 0) > 0;
    const format = hasTotal
      ? `${label}[{bar}] {percentage}% {value}/{total} | {duration_formatted}<{eta_formatted} | {fields}`
      : `${label}{value} | {duration_formatted} | {fields}`;
    this.bar = new cliProgress.SingleBar(
      { format, stream, hideCursor: false, barsize: 24, etaBuffer: 50, fps: 5, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(opts.total ?? 0, 0, { fields: '' });
  }
  update(value: number, fields?: ProgressFields): void {
    if (this.stopped) return;
    this.value = value;
    if (fields) this.fields = { ...this.fields, ...fields };
    this.bar.update(value, { fields: formatFields(this.fields) });
  }
  increment(delta = 1, fields?: ProgressFields): void {
    this.update(this.value + delta, fields);
  }
  setTotal(total: number): void {
    this.bar.setTotal(total);
  }
  stop(fields?: ProgressFields): void {
    if (this.stopped) return;
    if (fields) this.update(this.value, fields);
    this.stopped = true;
    this.bar.stop();
  }
}

class LineProgress implements Progress {
  private value = 0;
  private total: number;
  private fields: ProgressFields = {};
  private readonly start = Date.now();
  private lastPrint = Date.now();
  private stopped = false;
  constructor(
    private readonly opts: ProgressOptions,
    private readonly stream: NodeJS.WriteStream,
  ) {
    this.total = opts.total ?? 0;
  }
  private line(): string {
    const elapsed = (Date.now() - this.start) / 1000;
    const unit = this.opts.unit ? ` ${this.opts.unit}` : '';
    const parts = [this.opts.label ?? 'progress'];
    if (this.total > 0) {
      const pct = ((100 * this.value) / this.total).toFixed(1);
      parts.push(`${this.value}/${this.total}${unit} (${pct}%)`);
      const eta = this.value > 0 ? (elapsed * (this.total - this.value)) / this.value : NaN;
      parts.push(`elapsed ${formatDuration(elapsed)} eta ${this.value >= this.total ? '0s' : formatDuration(eta)}`);
    } else {
      parts.push(`${this.value}${unit}`, `elapsed ${formatDuration(elapsed)}`);
    }
    const f = formatFields(this.fields);
    if (f) parts.push(f);
    return parts.join(' | ') + '\n';
  }
  update(value: number, fields?: ProgressFields): void {
    if (this.stopped) return;
    this.value = value;
    if (fields) this.fields = { ...this.fields, ...fields };
    const now = Date.now();
    if (now - this.lastPrint >= (this.opts.lineIntervalMs ?? 30_000)) {
      this.lastPrint = now;
      this.stream.write(this.line());
    }
  }
  increment(delta = 1, fields?: ProgressFields): void {
    this.update(this.value + delta, fields);
  }
  setTotal(total: number): void {
    this.total = total;
  }
  stop(fields?: ProgressFields): void {
    if (this.stopped) return;
    if (fields) this.fields = { ...this.fields, ...fields };
    this.stopped = true;
    this.stream.write(this.line());
  }
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  const silent = opts.silent ?? process.env.ZTW_QUIET === '1';
  if (silent) return new SilentProgress();
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  return tty ? new BarProgress(opts, stream) : new LineProgress(opts, stream);
}
