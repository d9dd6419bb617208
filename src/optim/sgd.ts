// SGD with momentum, dampening, Nesterov and L2 weight decay: PyTorch's update rule.
import { Optimizer } from './optimizer';
import type { Tensor } from '../tensor/tensor';

export interface SGDOptions { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }

export class SGD extends Optimizer {
  readonly options: Required<SGDOptions>;
  constructor(params: Tensor[], o: SGDOptions) {
    super(params, o.lr);
    this.options = { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...o };
    if (this.options.nesterov && (this.options.momentum <= 0 || this.options.dampening !== 0))
      throw new RangeError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
  }

  protected update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void {
    const { momentum, dampening, nesterov, weightDecay } = this.options;
    let d = weightDecay ? grad.add(p, weightDecay) : grad;
    if (momentum) {
      const fresh = !state.has('momentum_buffer');
      const buf = this.stateTensor(state, 'momentum_buffer', () => d.clone());
      if (!fresh) buf.mul_(momentum).add_(d, 1 - dampening);
      const next = nesterov ? d.add(buf, momentum) : buf;
      if (d !== grad) d.dispose();
      d = next;
    }
    p.add_(d, -this.lr);
    if (d !== grad && d !== state.get('momentum_buffer')) d.dispose();
  }
}
