// Scoped memory: tensors made inside tidy() are freed when it returns, except
// those it returns or keep()s. Outside any scope, tensors live until dispose()
// or garbage collection.
import type { Tensor } from './tensor';
import { native } from './native';

const scopes: Set<Tensor>[] = [];

// The backstop for tensors no scope owns: one dropped without dispose() is
// freed by the collector's cleanup. Tensors inside a scope are left out (the
// scope frees them), so inference and training loops under tidy() give the
// collector no per-tensor work; see native/src/handle.h for what that saved.
// Whether a tensor is registered is a field of its own (Tensor.guarded):
// dispose() asks on every call, and a flag is cheaper than a WeakSet lookup.
const orphans = new FinalizationRegistry<bigint>((handle) => native.dispose(handle));

function guard(t: Tensor): void {
  if (t.guarded) return;
  t.guarded = true;
  orphans.register(t, t.handle, t);
}

export function track(t: Tensor): void {
  if (scopes.length) scopes[scopes.length - 1].add(t);
  else guard(t);
}

/** A disposed tensor needs no backstop. */
export function forget(t: Tensor): void {
  if (!t.guarded) return;
  t.guarded = false;
  orphans.unregister(t);
}

/** Takes a tensor out of every open scope, so tidy() will not free it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  guard(t);
  return t;
}

export type TensorContainer = Tensor | undefined | null | void | number | string | boolean | TensorContainer[] | { [k: string]: TensorContainer };

function collect(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ((value as Tensor).isTensor === true) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy(): the function must be synchronous');
  }
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  for (const t of scope) if (!survivors.has(t)) t.dispose();
  // What survives belongs to the enclosing scope now, or to no scope.
  for (const t of survivors) if (scope.has(t)) track(t);
  return result;
}

/** Disposes every tensor found in a value (tensor, array or plain object). */
export function dispose(value: unknown): void {
  const found = new Set<Tensor>();
  collect(value, found);
  for (const t of found) t.dispose();
}
