// PyTorch's default initialisations, so that layers start where PyTorch's do.
import type { Tensor } from '../tensor/tensor';
import { noGrad } from '../tensor/grad';

/** fan_in and fan_out of a weight [out, in, ...kernel]. */
export function fans(w: Tensor): { fanIn: number; fanOut: number } {
  const [out, inp, ...k] = w.shape;
  const receptive = k.reduce((a, b) => a * b, 1);
  return { fanIn: inp * receptive, fanOut: out * receptive };
}

/** kaiming_uniform_(a=sqrt(5)): PyTorch's default for Conv and Linear weights. */
export function kaimingUniformDefault(w: Tensor): Tensor {
  const { fanIn } = fans(w);
  const gain = Math.sqrt(2 / (1 + 5));
  const bound = gain * Math.sqrt(3 / fanIn);
  return noGrad(() => w.uniform_(-bound, bound));
}

/** kaiming_normal_(mode=fan_out, relu): used by ResNets for convolutions. */
export function kaimingNormalFanOut(w: Tensor): Tensor {
  const { fanOut } = fans(w);
  return noGrad(() => w.normal_(0, Math.sqrt(2 / fanOut)));
}

/** Bias default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function biasUniform(b: Tensor, fanIn: number): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return noGrad(() => b.uniform_(-bound, bound));
}
