// Grad-mode scopes. libtorch keeps grad mode per thread; all our calls come
// from the JS thread, so flipping it around a block is exact.
import { native } from './native';

export function noGrad<T>(fn: () => T): T {
  return withGradEnabled(false, fn);
}
export function enableGrad<T>(fn: () => T): T {
  return withGradEnabled(true, fn);
}
export function withGradEnabled<T>(enabled: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('noGrad(): the function must be synchronous');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}
export const isGradEnabled = (): boolean => native.isGradEnabled();
export const liveTensors = (): number => native.liveTensors();
