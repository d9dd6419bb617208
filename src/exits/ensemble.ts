// Ensembles over the exits' log-probabilities, one per exit m, all M trained
// at once (their parameters are disjoint, so joint training equals separate
// training). Geometric (ZTW): z_m = mean_{j<=m} exp(w_mj) log p_j + b_m,
// q_m = softmax(z_m). Additive: q_m ∝ sum_j exp(w_mj) p_j + exp(b_m).
// Mean: q_m = mean_{j<=m} p_j.
import { Module } from '../nn/module';
import { tensor, zeros, randn } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import { ExitCombiner } from './combine';
import * as F from '../nn/functional';
import type { Tensor } from '../tensor/tensor';

export type EnsembleKind = 'geometric' | 'additive' | 'mean';

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
    return this.combineWith(this.memberWeights(), this.kind === 'mean' ? undefined : this.param('bias'), logProbs);
  }

  /**
   * Ensemble for exit m alone, given only the first m+1 exits, in tensor
   * ops: [N, m+1, K] -> log q [N, K]. What ONNX export traces.
   */
  forwardExit(m: number, logProbs: Tensor): Tensor {
    const w = this.memberWeights().narrow(0, m, 1).narrow(1, 0, m + 1).view(m + 1); // [m+1] @ [N, m+1, K] -> [N, K]
    return this.combineWith(w, this.kind === 'mean' ? undefined : this.param('bias').narrow(0, m, 1), logProbs);
  }

  /** log q from member weights w (@ over the exits' axis) and the bias. */
  private combineWith(w: Tensor, bias: Tensor | undefined, logProbs: Tensor): Tensor {
    if (this.kind === 'geometric') return F.logSoftmax(w.matmul(logProbs).add(bias as Tensor), -1);
    let s = w.matmul(logProbs.exp());
    if (this.kind === 'additive') s = s.add((bias as Tensor).exp());
    return s.div(s.sum(-1, true)).log();
  }

  /**
   * The ensembles as inference uses them: weights and biases read out once
   * into a plain-JS combiner (see combine.ts). Numbers equal forward()'s up
   * to float32 rounding; offline evaluation and both runtimes use this.
   */
  combiner(): ExitCombiner {
    const { numExits: M, numClasses: K } = this.options;
    const w = noGrad(() => tidy(() => this.memberWeights().data() as Float32Array));
    const b = this.kind === 'mean' ? null : noGrad(() => tidy(() => this.param('bias').data() as Float32Array));
    return new ExitCombiner({
      kind: this.kind,
      numClasses: K,
      weights: Array.from({ length: M }, (_, m) => w.subarray(m * M, m * M + m + 1)),
      bias: Array.from({ length: M }, (_, m) => (b ? b.subarray(m * K, (m + 1) * K) : null)),
    });
  }

  /** FLOPs of exit m's ensemble for one sample: weighted sum of m+1 members, bias, softmax. */
  exitFlops(m: number): number {
    const K = this.options.numClasses;
    return (2 * (m + 1) - 1) * K + K + 3 * K;
  }
}
