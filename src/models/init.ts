// The reference's initialisation for its networks: Kaiming-normal (fan_out)
// convolutions, unit/zero batch norms, N(0, 0.01) linears with zero bias.
import type { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers';
import { kaimingNormalFanOut } from '../nn/init';
import { noGrad } from '../tensor/grad';

export function initResNetWeights(root: Module): void {
  noGrad(() => {
    for (const [, m] of root.namedModules()) {
      if (m instanceof Conv2d) {
        kaimingNormalFanOut(m.weight);
        m.bias?.zero_();
      } else if (m instanceof BatchNorm2d) {
        m.weight?.fill_(1);
        m.bias?.zero_();
      } else if (m instanceof Linear) {
        m.weight.normal_(0, 0.01);
        m.bias?.zero_();
      }
    }
  });
}
