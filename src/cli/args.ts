// Parsing helpers shared by the commands; each failure names the flag.
export function parseInputShape(s: string): [number, number, number] {
  const m = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(s.trim());
  if (!m) throw new Error(`--input: expected HxW or HxWxC (e.g. 32x32x3), got '${s}'`);
  const [h, w, c] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 3)];
  if (h !== w) throw new Error(`--input: only square inputs are supported, got ${h}x${w}`);
  return [c, h, w];
}

export function positiveInt(flag: string, v: string | number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got '${v}'`);
  return n;
}

export function positiveNumber(flag: string, v: string | number): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${flag}: expected a positive number, got '${v}'`);
  return n;
}

export function probability(flag: string, v: string | number): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new Error(`${flag} must be a number in [0, 1], got ${v}`);
  return n;
}

export function intList(flag: string, v: string): number[] {
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`${flag}: expected a comma-separated list of integers, got '${v}'`);
  return xs;
}
