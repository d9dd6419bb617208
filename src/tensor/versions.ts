// A snapshot of tensors' versions, for caches of values derived from them
// (folded batch-norm weights, the runtime's ensemble weights): libtorch bumps
// a tensor's version on every in-place update.
import { native } from './native';
import type { Tensor } from './tensor';

export interface VersionStamp {
  readonly handles: bigint[];
  readonly versions: Float64Array;
}

export function stampVersions(ts: readonly Tensor[]): VersionStamp {
  const handles = ts.map((t) => t.handle);
  return { handles, versions: Float64Array.from(native.versions(handles) as number[]) };
}

/** Whether the stamp is of exactly these tensors and none changed since (one native call, no array back). */
export function stampHolds(s: VersionStamp, ts: readonly Tensor[]): boolean {
  return s.handles.length === ts.length && s.handles.every((h, i) => h === ts[i].handle) && native.versionsMatch(s.handles, s.versions);
}
