// Batched conditional inference: the batch runs through the backbone stage
// by stage; after each IC the exit rule decides, the samples that leave are
// answered, and only the rest are carried to the next stage. Returns per
// sample the prediction, the probabilities, the exit it left at and the
// cost it spent.
import type { EarlyExitNetwork } from '../exits/network';
import type { ExitEnsembles } from '../exits/ensemble';
import type { CostModel } from '../eval/types';
import * as F from '../nn/functional';
import { arange, stack } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { validatePolicy, type ExitPolicy } from './policy';

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

export class EarlyExitRuntime {
  readonly numExits: number;
  readonly numClasses: number;

  constructor(readonly net: EarlyExitNetwork, readonly ensembles: ExitEnsembles | null, readonly costs: CostModel) {
    this.numExits = net.numExits;
    this.numClasses = net.backbone.numClasses;
    if (costs.exitCosts.length !== this.numExits) throw new Error(`EarlyExitRuntime: ${costs.exitCosts.length} exit costs for ${this.numExits} exits`);
    if (ensembles && ensembles.options.numExits !== this.numExits) throw new Error(`EarlyExitRuntime: ensembles cover ${ensembles.options.numExits} exits, the network has ${this.numExits}`);
  }

  private checkInput(x: Tensor): void {
    const want = this.net.backbone.inputShape;
    if (x.dtype !== 'float32') throw new TypeError(`early-exit inference: input must be float32, got ${x.dtype}`);
    if (x.ndim !== 4 || x.shape.slice(1).join(',') !== want.join(',')) throw new RangeError(`early-exit inference: input must be [N, ${want.join(', ')}], got [${x.shape.join(', ')}]`);
    if (noGrad(() => tidy(() => x.isnan().any().item()))) throw new RangeError('early-exit inference: input contains NaN');
  }

  /** Runs a batch (throughput mode); a batch of one is the latency mode. */
  run(x: Tensor, policy: ExitPolicy): ExitResult {
    validatePolicy(policy, this.numExits);
    this.checkInput(x);
    this.net.eval();
    const N = x.shape[0];
    const K = this.numClasses;
    const res: ExitResult = { prediction: new Int32Array(N), probs: new Float32Array(N * K), exitIndex: new Int32Array(N), cost: new Float64Array(N) };
    noGrad(() =>
      tidy(() => {
        const { heads, tapIndices, backbone } = this.net;
        let rows = arange(N); // original index of every sample still running
        let prevLogits: Tensor | undefined;
        let logProbs: Tensor[] = []; // every exit so far, for the ensemble (active rows only)
        let lastArg: Tensor | undefined;
        let streak: Tensor | undefined;
        let head = 0;
        let keepIdx: Tensor | undefined;
        const gen = backbone.staged(x);
        let tap = 0;
        // Answers the rows in `leave` (bool [n]) and returns the indices of the others.
        const record = (exit: number, p: Tensor, leave: Tensor): Tensor => {
          const idx = leave.nonzero().view(-1);
          if (idx.shape[0] > 0) this.answer(res, exit, rows.indexSelect(0, idx), p.indexSelect(0, idx));
          return leave.logicalNot().nonzero().view(-1);
        };
        for (let r = gen.next(); ; r = gen.next(keepIdx)) {
          keepIdx = undefined;
          if (r.done) {
            // The backbone's classifier answers whoever is left.
            const m = this.numExits - 1;
            const lp = F.logSoftmax(r.value, 1);
            const p = this.exitProbs(m, lp, logProbs);
            this.answer(res, m, rows, p);
            break;
          }
          if (!tapIndices.includes(tap++)) continue;
          const logits = heads[head].forward(r.value, head > 0 ? prevLogits : undefined);
          const lp = F.logSoftmax(logits, 1);
          const p = this.exitProbs(head, lp, logProbs);
          let leave: Tensor;
          if (policy.kind === 'confidence') {
            leave = p.maxDim(1).values.gt(policy.tau);
          } else {
            const arg = p.argmax(1);
            streak = lastArg && streak ? arg.eq(lastArg).to('int64').mul(streak).add(1) : arange(0, arg.shape[0]).mul(0).add(1);
            lastArg = arg;
            leave = streak.ge(policy.patience);
          }
          const stay = record(head, p, leave);
          if (stay.shape[0] === 0) {
            gen.return(undefined as never);
            break;
          }
          if (stay.shape[0] < rows.shape[0]) {
            rows = rows.indexSelect(0, stay);
            logProbs = logProbs.map((t) => t.indexSelect(0, stay));
            prevLogits = logits.indexSelect(0, stay);
            if (lastArg) lastArg = lastArg.indexSelect(0, stay);
            if (streak) streak = streak.indexSelect(0, stay);
            keepIdx = stay;
            logProbs.push(lp.indexSelect(0, stay));
          } else {
            prevLogits = logits;
            logProbs.push(lp);
          }
          head++;
        }
      }),
    );
    return res;
  }

  /** Probabilities of exit m: its own softmax, or its ensemble over exits 0..m. */
  private exitProbs(m: number, lp: Tensor, previous: Tensor[]): Tensor {
    if (!this.ensembles) return lp.exp();
    return this.ensembles.forwardExit(m, stack([...previous, lp], 1)).exp();
  }

  private answer(res: ExitResult, exit: number, rows: Tensor, p: Tensor): void {
    const idx = rows.data() as BigInt64Array;
    const probs = p.data() as Float32Array;
    const pred = p.argmax(1).data() as BigInt64Array;
    const K = this.numClasses;
    for (let i = 0; i < idx.length; i++) {
      const n = Number(idx[i]);
      res.prediction[n] = Number(pred[i]);
      res.exitIndex[n] = exit;
      res.cost[n] = this.costs.exitCosts[exit];
      res.probs.set(probs.subarray(i * K, (i + 1) * K), n * K);
    }
  }
}

