// Batched conditional inference: the batch runs through the backbone stage
// by stage; after each IC the exit rule decides, the samples that leave are
// answered, and only the rest are carried to the next stage. Returns per
// sample the prediction, the probabilities, the exit it left at and the
// cost it spent.
import type { EarlyExitNetwork } from '../exits/network';
import type { ExitEnsembles } from '../exits/ensemble';
import type { ExitCombiner } from '../exits/combine';
import type { CostModel } from '../eval/types';
import * as F from '../nn/functional';
import { tensor } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { native } from '../tensor/native';
import type { Module } from '../nn/module';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { validatePolicy, type ExitPolicy } from './policy';
import { releaseTaps } from '../models/backbone';
import { ExitBook, type ExitBookBuffers } from './onnx-core';
import { NativeExitBook } from './native-book';
import { stampHolds, stampVersions, type VersionStamp } from '../tensor/versions';

export interface ExitResult {
  /** Predicted class per sample. */
  prediction: Int32Array;
  /** Probabilities of the exit that answered, [N * K] row-major. */
  probs: Float32Array;
  /** 0-based exit index per sample (numExits - 1 is the backbone's classifier). */
  exitIndex: Int32Array;
  /** Cost (FLOPs of the cost model) spent on each sample. */
  cost: Float64Array;
}

/** The backbone's classifier as the last exit: its logits and their log-probabilities (its step is the caller's to take). */
function finalStep(logits: Tensor): { logits: Tensor; logProbs: Float32Array; decided: false; kept?: Tensor } {
  const lp = F.logSoftmax(logits, 1);
  const logProbs = lp.data() as Float32Array;
  lp.dispose();
  return { logits, logProbs, decided: false };
}

export class EarlyExitRuntime {
  readonly numExits: number;
  readonly numClasses: number;
  private ensembleCache?: { sources: Tensor[]; stamp: VersionStamp; combiner: ExitCombiner };
  /** Every module of the network, to put it in eval mode only when one is not (a walk of the tree cost ~20 us per call). */
  private readonly modules: Module[];
  /** The exit bookkeeping's memory, kept from call to call (run is synchronous). */
  private bookBuffers?: ExitBookBuffers;
  /** The native book for the last batch size and ensemble weights. */
  private nativeBookCache?: NativeExitBook;

  constructor(readonly net: EarlyExitNetwork, readonly ensembles: ExitEnsembles | null, readonly costs: CostModel) {
    this.numExits = net.numExits;
    this.numClasses = net.backbone.numClasses;
    if (costs.exitCosts.length !== this.numExits) throw new Error(`EarlyExitRuntime: ${costs.exitCosts.length} exit costs for ${this.numExits} exits`);
    if (ensembles && ensembles.options.numExits !== this.numExits) throw new Error(`EarlyExitRuntime: ensembles cover ${ensembles.options.numExits} exits, the network has ${this.numExits}`);
    this.modules = [...net.namedModules()].map(([, m]) => m);
  }

  private checkInput(x: Tensor): void {
    const want = this.net.backbone.inputShape;
    if (x.dtype !== 'float32') throw new TypeError(`early-exit inference: input must be float32, got ${x.dtype}`);
    if (x.ndim !== 4 || x.shape.slice(1).join(',') !== want.join(',')) throw new RangeError(`early-exit inference: input must be [N, ${want.join(', ')}], got [${x.shape.join(', ')}]`);
    if (native.hasNan(x.handle)) throw new RangeError('early-exit inference: input contains NaN');
  }

  /** Runs a batch (throughput mode); a batch of one is the latency mode. */
  run(x: Tensor, policy: ExitPolicy): ExitResult {
    validatePolicy(policy, this.numExits);
    this.checkInput(x);
    if (this.modules.some((m) => m.training)) this.net.eval();
    const N = x.shape[0];
    const K = this.numClasses;
    const M = this.numExits;
    // Per exit: one native call for the head, which writes its
    // log-probabilities into the book's memory and, under the confidence
    // rule with no ensemble or the geometric one, takes the exit's step in
    // the native book; otherwise the ensemble, the rule and the rows
    // bookkeeping run in JS (ExitBook). At batch 1 each native call costs
    // ~1-4 us, as much as a small op's work.
    let res: ExitResult | undefined;
    noGrad(() =>
      tidy(() => {
        const { heads, tapIndices, backbone } = this.net;
        const combiner = this.combiner();
        const nativeBook = NativeExitBook.serves(combiner, policy) ? this.nativeBook(combiner, N) : undefined;
        const tau = policy.kind === 'confidence' ? policy.tau : 0;
        const jsRes: ExitResult | undefined = nativeBook ? undefined : { prediction: new Int32Array(N), probs: new Float32Array(N * K), exitIndex: new Int32Array(N), cost: new Float64Array(N) };
        const book = jsRes ? new ExitBook(combiner, jsRes, policy, N, K, M, this.bookBuffers) : undefined;
        if (book) this.bookBuffers = book.buffers;
        const room = nativeBook ? nativeBook.room : (book as ExitBook).buffers.head;
        let prevLogits: Tensor | undefined;
        let keep: Tensor | undefined;
        let head = 0;
        let tap = 0;
        let n = N;
        // Each tap is freed once the backbone has moved past it, each
        // index of kept rows once the backbone has used it.
        const gen = releaseTaps(backbone.staged(x, { consumeTaps: true }));
        for (let r = gen.next(); ; r = gen.next(keep)) {
          keep?.dispose();
          keep = undefined;
          if (!r.done && !tapIndices.includes(tap++)) continue;
          const m = r.done ? M - 1 : head;
          const into = n === N ? room : room.subarray(0, n * K);
          const { logits, logProbs, decided, kept } = r.done ? finalStep(r.value) : heads[head].exitStep(r.value, head > 0 ? prevLogits : undefined, into, nativeBook?.decider(m, tau));
          const stay = nativeBook ? nativeBook.step(m, logProbs, r.done === true, tau, decided) : (book as ExitBook).step(m, logProbs, r.done === true, this.costs.exitCosts[m]);
          if (r.done) break;
          if (stay.length === 0) {
            gen.return(undefined as never);
            break;
          }
          prevLogits?.dispose();
          prevLogits = logits;
          if (kept) {
            keep = kept; // the head's call narrowed its logits too
            n = stay.length;
          } else if (stay.length < n) {
            keep = tensor(stay, [stay.length]); // int32: index_select takes it as is (an int64 index was built through BigInts)
            prevLogits = logits.takeRows(keep);
            logits.dispose();
            book?.keep(stay);
            n = stay.length;
          }
          head++;
        }
        res = nativeBook ? nativeBook.answers() : jsRes;
      }),
    );
    return res as ExitResult;
  }

  /** The native book for a batch of N under this combiner, made once and reused while both stay. */
  private nativeBook(combiner: ExitCombiner | null, N: number): NativeExitBook {
    const c = this.nativeBookCache;
    if (c && c.N === N && c.combiner === combiner) return c;
    return (this.nativeBookCache = new NativeExitBook(combiner, N, this.numClasses, this.numExits, this.costs.exitCosts));
  }

  /**
   * The ensembles' combiner, read out once and reused while the ensemble's
   * parameters stay the same (they are fixed at inference).
   */
  private combiner(): ExitCombiner | null {
    const ens = this.ensembles;
    if (!ens) return null;
    const c = this.ensembleCache;
    // The parameter tensors are the ensemble's for good (loadStateDict copies into them); their versions show updates.
    if (c && stampHolds(c.stamp, c.sources)) return c.combiner;
    const sources = ens.parameters();
    const combiner = ens.combiner();
    this.ensembleCache = { sources, stamp: stampVersions(sources), combiner };
    return combiner;
  }

  /** Drops the cached ensemble weights (the network and ensembles stay the caller's). */
  dispose(): void {
    this.ensembleCache = undefined;
    this.bookBuffers = undefined;
    this.nativeBookCache = undefined;
  }
}
