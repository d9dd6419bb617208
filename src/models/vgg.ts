// VGG-16 with batch norm, CIFAR layout: 13 conv taps (after conv+BN+ReLU,
// and the pool where one follows) and one after the first FC layer.
import { Backbone, keepRows, type BackboneOptions, type StagedForward, type TapInfo } from './backbone';
import { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d } from '../nn/layers';
import * as F from '../nn/functional';
import { convBn } from '../nn/fused';
import type { Tensor } from '../tensor/tensor';
import { initResNetWeights } from './init';

const CHANNELS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
const POOL_AFTER = new Set([1, 3, 6, 9, 12]); // convs 2, 4, 7, 10, 13

class ConvBlock extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly pool?: MaxPool2d;
  constructor(cin: number, cout: number, pool: boolean) {
    super();
    this.conv = this.registerModule('conv', new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1 }));
    this.bn = this.registerModule('bn', new BatchNorm2d({ numFeatures: cout }));
    if (pool) this.pool = this.registerModule('pool', new MaxPool2d({ kernelSize: 2 }));
  }
  forward(x: Tensor): Tensor {
    const h = convBn(this.conv, this.bn, x, { relu: true });
    return this.pool ? this.pool.forward(h) : h;
  }
}

class FcBlock extends Module {
  readonly fc: Linear;
  readonly drop: Dropout;
  constructor(inF: number, outF: number, readonly relu: boolean, dropout: number) {
    super();
    this.fc = this.registerModule('fc', new Linear({ inFeatures: inF, outFeatures: outF }));
    this.drop = this.registerModule('drop', new Dropout({ p: dropout }));
  }
  forward(x: Tensor): Tensor {
    const h = this.fc.forward(x);
    return this.drop.forward(this.relu ? F.relu(h) : h);
  }
}

export class VGG16BN extends Backbone {
  readonly arch = 'vgg16bn';
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[] = [];
  readonly convs: ConvBlock[] = [];
  readonly fc1: FcBlock;
  readonly fc2: FcBlock;
  readonly classifier: Linear;

  constructor(o: BackboneOptions = {}) {
    super();
    const inC = o.inChannels ?? 3;
    const size = o.inputSize ?? 32;
    this.numClasses = o.numClasses ?? 10;
    this.inputShape = [inC, size, size];
    let cin = inC;
    let s = size;
    CHANNELS.forEach((cout, i) => {
      const pool = POOL_AFTER.has(i);
      if (pool) s = Math.floor(s / 2);
      const name = `features.${i}`;
      this.convs.push(this.registerModule(name, new ConvBlock(cin, cout, pool)));
      this.taps.push({ name, shape: [cout, s, s] });
      cin = cout;
    });
    // The reference widens the FC layers for 64x64 inputs (2x2 final maps).
    const flat = 512 * s * s;
    const [f1, f2] = size >= 64 ? [2048, 1024] : [512, 512];
    this.fc1 = this.registerModule('fc1', new FcBlock(flat, f1, true, o.dropout ?? 0.5));
    this.taps.push({ name: 'fc1', shape: [f1] });
    // The last two linears have no ReLU between them, as in the reference.
    this.fc2 = this.registerModule('fc2', new FcBlock(f1, f2, false, o.dropout ?? 0.5));
    this.classifier = this.registerModule('classifier', new Linear({ inFeatures: f2, outFeatures: this.numClasses }));
    initResNetWeights(this);
  }

  override get weightDecay(): number {
    return 5e-4;
  }

  *staged(x: Tensor): StagedForward {
    let h = x;
    for (const block of this.convs) {
      h = block.forward(h);
      h = keepRows(h, yield h);
    }
    h = this.fc1.forward(h.flatten(1));
    h = keepRows(h, yield h);
    return this.classifier.forward(this.fc2.forward(h));
  }
}
