// A snapshot of tensors' versions, for caches of values derived from them
// (folded batch-norm weights, the runtime's ensemble weights): libtorch bumps
// a tensor's version on every in-place update.
import { native } from './native';
import type { Tensor } from './tensor';

export interface VersionStamp {
  readonly handles: bigint[];
  readonly versions: Float64Array;
  /** The write count at which the versions were last seen to hold. */
  checkedAt: number;
}

// Every JS route that writes into an existing tensor's memory (the in-place
// methods of Tensor, a training-mode batch norm's running statistics) counts
// itself here. While the count stands, no stamp can have gone stale, and
// holding one needs no native call: a conv + BN pair checked its seven
// sources at every call, 57 native calls (~60 us) in a batch-1 ResNet-56
// forward of ~1.2 ms. Not counted: the ops that write activations into
// memory their caller gives up (consumeAdd, inPlace), which are never the
// parameters and buffers that stamps cover.
let writes = 0;

/** Notes a write into existing tensor memory (see above), or a module's tensor replaced. */
export function noteTensorWrite(): void {
  writes++;
}

/** Whether nothing was written since the stamp was last seen to hold (no call, no lookup). */
export function unwrittenSince(s: VersionStamp): boolean {
  return s.checkedAt === writes;
}

export function stampVersions(ts: readonly Tensor[]): VersionStamp {
  const handles = ts.map((t) => t.handle);
  return { handles, versions: Float64Array.from(native.versions(handles) as number[]), checkedAt: writes };
}

/** Whether the stamp is of exactly these tensors and none changed since (no native call while nothing was written). */
export function stampHolds(s: VersionStamp, ts: readonly Tensor[]): boolean {
  if (s.handles.length !== ts.length || !s.handles.every((h, i) => h === ts[i].handle)) return false;
  if (s.checkedAt === writes) return true;
  if (!native.versionsMatch(s.handles, s.versions)) return false;
  s.checkedAt = writes;
  return true;
}
