// Ensembles over the exits' log-probabilities, one per exit m, all M trained
// at once (their parameters are disjoint, so joint training equals separate
// training). Geometric (ZTW): z_m = mean_{j<=m} exp(w_mj) log p_j + b_m,
// q_m = softmax(z_m). Additive: q_m ∝ sum_j exp(w_mj) p_j + exp(b_m).
// Mean: q_m = mean_{j<=m} p_j.
import { Module } from '../nn/module';
import { tensor, zeros, randn, stack } from '../tensor/create';
import * as F from '../nn/functional';
import type { Tensor } from '../tensor/tensor';

export type EnsembleKind = 'geometric' | 'additive' | 'mean';

export interface ExitParams {
  weights: Tensor;
  bias?: Tensor;
}

export interface EnsembleOptions { numExits: number; numClasses: number; kind?: EnsembleKind }

export class ExitEnsembles extends Module {
  readonly kind: EnsembleKind;
  /** Lower-triangular averaging mask: row m has 1/(m+1) on members 0..m. */
  private readonly mask: Tensor;

  constructor(readonly options: EnsembleOptions) {
    super();
    const { numExits: M, numClasses: K } = options;
    this.kind = options.kind ?? 'geometric';
    const mask = new Float32Array(M * M);
    for (let m = 0; m < M; m++) for (let j = 0; j <= m; j++) mask[m * M + j] = this.kind === 'geometric' ? 1 / (m + 1) : 1;
    this.mask = this.registerBuffer('mask', tensor(mask, [M, M]));
    if (this.kind !== 'mean') {
      this.registerParameter('weight', randn([M, M]).mul_(0.01)); // w ~ N(0, 0.01)
      this.registerParameter('bias', zeros([M, K]));
    }
  }

  /** Ensemble weights as used: exp(w) masked to members j <= m (and averaged for geometric). */
  memberWeights(): Tensor {
    const { numExits: M } = this.options;
    if (this.kind === 'mean') return this.mask.div(this.mask.sum(1, true)).view(M, M);
    return this.param('weight').exp().mul(this.mask);
  }

  /**
   * logProbs: [N, M, K] log-softmax of every exit. Returns log q: [N, M, K],
   * log-probabilities of each exit's ensemble (normalised).
   */
  forward(logProbs: Tensor): Tensor {
    const w = this.memberWeights();
    if (this.kind === 'geometric') {
      const z = w.matmul(logProbs).add(this.param('bias'));
      return F.logSoftmax(z, -1);
    }
    const p = logProbs.exp();
    let s = w.matmul(p);
    if (this.kind === 'additive') s = s.add(this.param('bias').exp());
    return s.div(s.sum(-1, true)).log();
  }

  /** Ensemble for exit m alone, given only the first m+1 exits: [N, m+1, K] -> [N, K]. */
  forwardExit(m: number, logProbs: Tensor): Tensor {
    return this.combineExit(this.exitParams(m), logProbs);
  }

  /**
   * Exit m's member weights [m+1] and bias [1, K] (none for the mean).
   * An inference runtime computes them once and calls combineExit per batch.
   */
  exitParams(m: number): ExitParams {
    const w = this.memberWeights().narrow(0, m, 1).narrow(1, 0, m + 1).view(m + 1); // [m+1] @ [N, m+1, K] -> [N, K]
    return { weights: w, bias: this.kind === 'mean' ? undefined : this.param('bias').narrow(0, m, 1) };
  }

  /** forwardExit with exitParams(m) given: the same numbers. */
  combineExit({ weights, bias }: ExitParams, logProbs: Tensor): Tensor {
    if (this.kind === 'geometric') {
      const z = weights.matmul(logProbs).add(bias as Tensor);
      return F.logSoftmax(z, -1);
    }
    const p = logProbs.exp();
    let s = weights.matmul(p);
    if (this.kind === 'additive') s = s.add((bias as Tensor).exp());
    return s.div(s.sum(-1, true)).log();
  }

  /**
   * Every exit's ensemble computed exactly as inference computes it, one exit
   * at a time (forward() batches them, which may differ in the last bit):
   * offline evaluation uses this so that it matches online exits exactly.
   */
  forwardPerExit(logProbs: Tensor): Tensor {
    const M = this.options.numExits;
    const outs: Tensor[] = [];
    for (let m = 0; m < M; m++) outs.push(this.forwardExit(m, logProbs.narrow(1, 0, m + 1)));
    return stack(outs, 1);
  }

  /** FLOPs of exit m's ensemble for one sample: weighted sum of m+1 members, bias, softmax. */
  exitFlops(m: number): number {
    const K = this.options.numClasses;
    return (2 * (m + 1) - 1) * K + K + 3 * K;
  }
}
