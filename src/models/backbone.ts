// The protocol that lets any network receive early exits: a staged forward
// that yields the features at each tap point and returns the final logits.
// The caller may send back an int32 or int64 index of the rows to keep, so that a
// batched runtime carries only the samples that have not exited yet; the
// backbone then goes on with its own narrowed copy (keepRows), or reads the
// kept rows of the tap through the index (BlockOptions.rows): the index,
// like the tap, must stay valid until the backbone's next yield.
// A backbone uses a yielded tensor only until it yields the next one (or
// returns): from then on the tensor is the caller's, which may free it.
// releaseTaps() does so for callers that read each tap before resuming.
import { Module } from '../nn/module';
import * as F from '../nn/functional';
import { profiling } from '../nn/profiler';
import { isGradEnabled } from '../tensor/grad';
import type { Tensor } from '../tensor/tensor';

export interface TapInfo {
  /** Where the tap sits, e.g. "layer2.4". */
  name: string;
  /** Feature shape at the tap for one sample: [C, H, W] (or [F] after a flatten). */
  shape: number[];
}

export type StagedForward = Generator<Tensor, Tensor, Tensor | undefined>;

export interface StagedOptions {
  /**
   * The caller reads each tap only before it resumes the pass (as through
   * releaseTaps): the backbone may then write the next maps into the tap's
   * memory, where they stay cache-warm. Without gradients only.
   */
  consumeTaps?: boolean;
}

export interface BackboneOptions {
  numClasses?: number;
  inChannels?: number;
  /** Spatial input size: 32 (CIFAR), 64 (Tiny ImageNet, stride-2 stem) or the network's own. */
  inputSize?: number;
  /**
   * Dropout probability where the network has dropout (VGG's classifier,
   * WRN's blocks); default the reference's (0.5, 0.3). Short recipes may want
   * 0 for WRN: its dropout sits before a BN, whose running variance then no
   * longer fits evaluation until training has converged.
   */
  dropout?: number;
}

export abstract class Backbone extends Module {
  abstract readonly arch: string;
  abstract readonly numClasses: number;
  abstract readonly inputShape: number[];
  /** Tap points in forward order; staged() yields exactly one tensor per tap. */
  abstract readonly taps: TapInfo[];

  abstract staged(x: Tensor, options?: StagedOptions): StagedForward;

  /** Weight decay of the reference recipe for this network. */
  get weightDecay(): number {
    return 1e-4;
  }

  /** The staged pass, no tap read: each may be overwritten once passed. */
  forward(x: Tensor): Tensor {
    const gen = releaseTaps(this.staged(x, { consumeTaps: true }));
    for (;;) {
      const r = gen.next();
      if (r.done) return r.value;
    }
  }
}

/**
 * A staged forward that frees each tap once the backbone has moved past it
 * (the protocol above). Holding every tap to the end of a pass kept ~130 MB
 * alive at batch 128 on ResNet-56, and its external-memory reports set off a
 * V8 garbage collection in every pass: the plain forward ran 15-20% slower.
 */
export function* releaseTaps(gen: StagedForward): StagedForward {
  let passed: Tensor | undefined;
  try {
    for (let r = gen.next(); ; ) {
      passed?.dispose();
      if (r.done) return r.value;
      passed = r.value;
      r = gen.next(yield r.value);
    }
  } finally {
    gen.return(undefined as never); // a caller that stops early ends the backbone's pass too
  }
}

export interface BlockOptions {
  /**
   * The block's input is the caller's to give up (it disposes it after the
   * call): the block may write its result into the input's memory.
   */
  consumeInput?: boolean;
  /**
   * The input is a tap before its ReLU, which the block applies in its first
   * convolution's call: in the input's memory, or on the way where the
   * block's loop reads through (a ResNet's 16-channel identity blocks; see
   * nextInput). Only with consumeInput or rows.
   */
  reluInput?: boolean;
  /**
   * Only these rows of the input (an int32 index) go on: the block reads
   * them through the index, without a copy (with reluInput, their ReLU on
   * the way). The input stays the caller's and unchanged.
   */
  rows?: Tensor;
}

/**
 * A plain forward through blocks that run whole (each block's final ReLU
 * inside its last convolution, which a staged forward cannot do: it hands the
 * ICs the maps before that ReLU). Each block's input is given up to it and
 * freed once used.
 */
export function forwardBlocks(h: Tensor, blocks: readonly { forward(x: Tensor, options?: BlockOptions): Tensor }[]): Tensor {
  for (const block of blocks) {
    const next = block.forward(h, { consumeInput: true });
    h.dispose();
    h = next;
  }
  return h;
}

/**
 * Whether a map the caller gives up may be overwritten: not with gradients
 * (autograd may have kept it for a backward pass) nor under the profiler
 * (which counts each op).
 */
function mayOverwrite(inPlace: boolean): boolean {
  return inPlace && !isGradEnabled() && !profiling();
}

/**
 * Narrows a running batch to the rows the caller keeps: a copy in the
 * batch's memory format (x stays as it was).
 */
export function keepRows(x: Tensor, rows: Tensor | undefined): Tensor {
  return rows ? x.takeRows(rows) : x;
}

/**
 * Whether a block may read the kept rows of a tap through their index
 * (BlockOptions.rows) rather than from a copy: an int32 index, no gradients,
 * no profiler (which counts the copy as an op).
 */
export function readsThroughRows(rows: Tensor | undefined): rows is Tensor {
  return rows !== undefined && rows.dtype === 'int32' && !isGradEnabled() && !profiling();
}

/**
 * The next block's input from a tap and the rows the caller keeps of it:
 * with the tap given up, the tap itself or its kept rows moved within its
 * memory (takeRows inPlace: after an exit at batch 128 a few rows move where
 * a copy wrote every survivor), the ReLU left to the next block
 * (BlockOptions.reluInput); otherwise relu(keepRows(tap, rows)) in a map of
 * its own. The input is the tap itself only with no rows and the tap given up.
 * (At batch 1 a ReLU call of its own was a crossing per block.)
 */
export function nextInput(tap: Tensor, rows: Tensor | undefined, inPlace: boolean): { input: Tensor; reluPending: boolean } {
  if (!mayOverwrite(inPlace)) return { input: reluKeepRows(tap, rows), reluPending: false };
  return { input: rows ? tap.takeRows(rows, { inPlace: true }) : tap, reluPending: true };
}

/**
 * relu(keepRows(x, rows)), the ReLU in the copy's pass when rows are kept;
 * with no rows and inPlace (the caller gives x up), in x's memory.
 */
export function reluKeepRows(x: Tensor, rows: Tensor | undefined, inPlace = false): Tensor {
  return rows ? x.takeRows(rows, { relu: true }) : F.relu(x, { inPlace: mayOverwrite(inPlace) });
}
