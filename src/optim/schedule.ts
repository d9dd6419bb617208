// Learning-rate schedules and gradient clipping.
import type { Optimizer } from './optimizer';
import type { Tensor } from '../tensor/tensor';
import { noGrad } from '../tensor/grad';
import { stack } from '../tensor/create';
import { tidy } from '../tensor/scope';

export interface MultiStepLROptions { milestones: number[]; gamma?: number }

/** lr = base * gamma^(number of milestones <= epoch); call step() once per epoch. */
export class MultiStepLR {
  readonly baseLr: number;
  readonly milestones: number[];
  readonly gamma: number;
  epoch = 0;
  constructor(private readonly optimizer: Optimizer, o: MultiStepLROptions) {
    this.baseLr = optimizer.lr;
    this.milestones = [...o.milestones].sort((a, b) => a - b);
    this.gamma = o.gamma ?? 0.1;
  }
  lrAt(epoch: number): number {
    return this.baseLr * this.gamma ** this.milestones.filter((m) => m <= epoch).length;
  }
  step(): void {
    this.setEpoch(this.epoch + 1);
  }
  /** Jumps to an epoch, as a resumed run does. */
  setEpoch(epoch: number): void {
    this.epoch = epoch;
    this.optimizer.lr = this.lrAt(epoch);
  }
}

/** Scales gradients so that their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
      if (!grads.length) return 0;
      const total = stack(grads.map((g) => g.norm(2))).norm(2).item();
      const coef = maxNorm / (total + 1e-6);
      if (coef < 1) for (const g of grads) g.mul_(coef);
      return total;
    }),
  );
}
