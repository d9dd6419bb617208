// Adam with L2 weight decay (PyTorch's torch.optim.Adam, amsgrad off).
import { Optimizer } from './optimizer';
import { zerosLike } from '../tensor/create';
import type { Tensor } from '../tensor/tensor';

export interface AdamOptions { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class Adam extends Optimizer {
  readonly options: Required<AdamOptions>;
  constructor(params: Tensor[], o: AdamOptions = {}) {
    super(params, o.lr ?? 1e-3);
    this.options = { lr: this.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...o };
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void {
    const [b1, b2] = this.options.betas;
    const { eps, weightDecay } = this.options;
    const g = weightDecay ? grad.add(p, weightDecay) : grad;
    const m = this.stateTensor(state, 'exp_avg', () => zerosLike(p));
    const v = this.stateTensor(state, 'exp_avg_sq', () => zerosLike(p));
    const t = this.stateTensor(state, 'step', () => zerosLike(p).sum().to('float64'));
    t.add_(1);
    const step = t.item();
    m.mul_(b1).add_(g, 1 - b1);
    v.mul_(b2).addcmul_(g, g, 1 - b2);
    const bc1 = 1 - b1 ** step;
    const bc2 = 1 - b2 ** step;
    const vs = v.sqrt();
    const denom = vs.div_(Math.sqrt(bc2)).add_(eps);
    p.addcdiv_(m, denom, -this.lr / bc1);
    denom.dispose();
    if (g !== grad) g.dispose();
  }
}
