// NatureCNN (the DQN/PPO Atari network): taps after conv 1 and conv 2.
import { Backbone, keepRows, type BackboneOptions, type StagedForward, type TapInfo } from './backbone';
import { Conv2d, Linear } from '../nn/layers';
import * as F from '../nn/functional';
import type { Tensor } from '../tensor/tensor';

export class NatureCNN extends Backbone {
  readonly arch = 'naturecnn';
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[];
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly conv3: Conv2d;
  readonly fc: Linear;
  readonly head: Linear;

  constructor(o: BackboneOptions = {}) {
    super();
    const inC = o.inChannels ?? 4;
    const size = o.inputSize ?? 84;
    this.numClasses = o.numClasses ?? 18;
    this.inputShape = [inC, size, size];
    const s1 = Math.floor((size - 8) / 4) + 1;
    const s2 = Math.floor((s1 - 4) / 2) + 1;
    const s3 = s2 - 2;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: inC, outChannels: 32, kernelSize: 8, stride: 4 }));
    this.conv2 = this.registerModule('conv2', new Conv2d({ inChannels: 32, outChannels: 64, kernelSize: 4, stride: 2 }));
    this.conv3 = this.registerModule('conv3', new Conv2d({ inChannels: 64, outChannels: 64, kernelSize: 3, stride: 1 }));
    this.fc = this.registerModule('fc', new Linear({ inFeatures: 64 * s3 * s3, outFeatures: 512 }));
    this.head = this.registerModule('head', new Linear({ inFeatures: 512, outFeatures: this.numClasses }));
    this.taps = [
      { name: 'conv1', shape: [32, s1, s1] },
      { name: 'conv2', shape: [64, s2, s2] },
    ];
  }

  *staged(x: Tensor): StagedForward {
    let h = F.relu(this.conv1.forward(x));
    h = keepRows(h, yield h);
    h = F.relu(this.conv2.forward(h));
    h = keepRows(h, yield h);
    h = F.relu(this.conv3.forward(h));
    return this.head.forward(F.relu(this.fc.forward(h.flatten(1))));
  }
}
