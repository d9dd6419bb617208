// Grad-mode scopes. libtorch keeps grad mode per thread; all our calls come
// from the JS thread, so flipping it around a block is exact, and a copy of
// the flag on this side answers isGradEnabled() without a native call (the
// layers ask before every op that might overwrite its input: ~38 calls per
// image in a batch-1 early-exit pass).
import { native } from './native';

let enabled: boolean = native.isGradEnabled();

export function noGrad<T>(fn: () => T): T {
  return withGradEnabled(false, fn);
}
export function enableGrad<T>(fn: () => T): T {
  return withGradEnabled(true, fn);
}
export function withGradEnabled<T>(on: boolean, fn: () => T): T {
  const prev: boolean = native.setGradEnabled(on);
  enabled = on;
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('noGrad(): the function must be synchronous');
    return r;
  } finally {
    native.setGradEnabled(prev);
    enabled = prev;
  }
}
export const isGradEnabled = (): boolean => enabled;
export const liveTensors = (): number => native.liveTensors();
