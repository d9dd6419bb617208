// MobileNet v1 for 32x32 inputs: depthwise-separable blocks, a tap after
// each block's pointwise ReLU.
import { Backbone, keepRows, type BackboneOptions, type StagedForward, type TapInfo } from './backbone';
import { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Linear } from '../nn/layers';
import { convBn } from '../nn/fused';
import type { Tensor } from '../tensor/tensor';
import { initResNetWeights } from './init';

const CFG: [number, number][] = [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]];

class SeparableBlock extends Module {
  readonly dw: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly pw: Conv2d;
  readonly bn2: BatchNorm2d;
  constructor(cin: number, cout: number, stride: number) {
    super();
    this.dw = this.registerModule('dw', new Conv2d({ inChannels: cin, outChannels: cin, kernelSize: 3, stride, padding: 1, groups: cin, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: cin }));
    this.pw = this.registerModule('pw', new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d({ numFeatures: cout }));
  }
  forward(x: Tensor): Tensor {
    const h = convBn(this.dw, this.bn1, x, { relu: true });
    const out = convBn(this.pw, this.bn2, h, { relu: true });
    h.dispose();
    return out;
  }
}

export class MobileNet extends Backbone {
  readonly arch = 'mobilenet';
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[] = [];
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly blocks: SeparableBlock[] = [];
  readonly fc: Linear;

  constructor(o: BackboneOptions = {}) {
    super();
    const inC = o.inChannels ?? 3;
    const size = o.inputSize ?? 32;
    this.numClasses = o.numClasses ?? 10;
    this.inputShape = [inC, size, size];
    const stemStride = size >= 64 ? 2 : 1;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: inC, outChannels: 32, kernelSize: 3, stride: stemStride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: 32 }));
    let cin = 32;
    let s = size / stemStride;
    CFG.forEach(([cout, stride], i) => {
      s = Math.ceil(s / stride);
      const name = `layers.${i}`;
      this.blocks.push(this.registerModule(name, new SeparableBlock(cin, cout, stride)));
      this.taps.push({ name, shape: [cout, s, s] });
      cin = cout;
    });
    this.fc = this.registerModule('fc', new Linear({ inFeatures: 1024, outFeatures: this.numClasses }));
    initResNetWeights(this);
  }

  *staged(x: Tensor): StagedForward {
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    for (const block of this.blocks) {
      h = block.forward(h);
      h = keepRows(h, yield h);
    }
    return this.fc.forwardPooled(h);
  }
}
