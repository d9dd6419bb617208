// The confidence rule's exit bookkeeping in native code (native/src/exit_book.h):
// the same numbers as ExitBook (onnx-core.ts), which stays the bookkeeping of
// the patience rule, of the additive and mean ensembles and of the
// onnxruntime runtimes. A head's native call takes its exit's step on its way
// out (ICHead.exitStep's `decide`), so that at batch 1 an exit costs one
// crossing and no JS arithmetic among the convolutions.
import type { ExitCombiner } from '../exits/combine';
import { native } from '../tensor/native';
import type { ExitPolicy } from './policy';

/** What a head passes to its native call to take its exit's step. */
export interface ExitDecider {
  /** The native book (exitBookNew). */
  book: unknown;
  exit: number;
  tau: number;
}

export interface ExitAnswers {
  prediction: Int32Array;
  probs: Float32Array;
  exitIndex: Int32Array;
  cost: Float64Array;
}

export class NativeExitBook {
  /** The native book, for a head's call. */
  readonly handle: unknown;
  /** Room for one exit's log-probabilities ([N * K]), for a head to write into. */
  readonly room: Float32Array;
  private readonly memory: ExitAnswers & { store: Float32Array; rows: Int32Array; stay: Int32Array; state: Int32Array };

  /** Whether the native book serves this ensemble (none, or the geometric one) and rule (confidence). */
  static serves(combiner: ExitCombiner | null, policy: ExitPolicy): boolean {
    return policy.kind === 'confidence' && (!combiner || combiner.spec.kind === 'geometric');
  }

  constructor(readonly combiner: ExitCombiner | null, readonly N: number, readonly K: number, readonly M: number, costs: readonly number[]) {
    if (combiner && (combiner.spec.kind !== 'geometric' || combiner.numExits !== M || combiner.spec.numClasses !== K)) throw new RangeError(`NativeExitBook: needs a geometric combiner of ${M} exits and ${K} classes`);
    this.memory = {
      store: new Float32Array(M * N * K),
      probs: new Float32Array(N * K),
      rows: new Int32Array(N),
      stay: new Int32Array(N),
      state: new Int32Array(1),
      prediction: new Int32Array(N),
      exitIndex: new Int32Array(N),
      cost: new Float64Array(N),
    };
    let weights: Float64Array | null = null;
    let bias: Float64Array | null = null;
    if (combiner) {
      // Exit m's member weights at m (m + 1) / 2, its bias at m K: the values ExitCombiner uses.
      weights = new Float64Array((M * (M + 1)) / 2);
      bias = new Float64Array(M * K);
      combiner.spec.weights.forEach((w, m) => weights?.set(Array.from(w), (m * (m + 1)) / 2));
      combiner.spec.bias.forEach((b, m) => bias?.set(Array.from(b as ArrayLike<number>), m * K));
    }
    this.room = new Float32Array(N * K);
    this.handle = native.exitBookNew(N, K, M, weights, bias, Float64Array.from(costs), this.memory);
  }

  /** Samples still running after the last step. */
  get running(): number {
    return this.memory.state[0];
  }

  /** For a head's call: take exit m's step there. */
  decider(exit: number, tau: number): ExitDecider {
    return { book: this.handle, exit, tau };
  }

  /**
   * Exit m's step on its log-probabilities ([n * K]) unless its head took it;
   * the positions among the running rows of those that stay (valid until the
   * next step). Exit 0 starts a pass over the whole batch.
   */
  step(m: number, logProbs: Float32Array, final: boolean, tau: number, takenByHead: boolean): Int32Array {
    if (!takenByHead) native.exitBookStep(this.handle, m, logProbs, tau, final);
    return this.memory.stay.subarray(0, this.running);
  }

  /** The answers of the pass, in arrays of their own. */
  answers(): ExitAnswers {
    const { prediction, probs, exitIndex, cost } = this.memory;
    return { prediction: prediction.slice(), probs: probs.slice(), exitIndex: exitIndex.slice(), cost: cost.slice() };
  }
}
