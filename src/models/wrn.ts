// Wide ResNet (pre-activation blocks, dropout inside), CIFAR layout. The tap
// is the block sum, before the next block's BN-ReLU.
import { Backbone, keepRows, type BackboneOptions, type BlockOptions, type StagedForward, type StagedOptions, type TapInfo } from './backbone';
import { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Dropout, Linear } from '../nn/layers';
import * as F from '../nn/functional';
import { convBn, convFused } from '../nn/fused';
import type { Tensor } from '../tensor/tensor';
import { initResNetWeights } from './init';

class WideBlock extends Module {
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly drop: Dropout;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly shortcut?: Conv2d;
  constructor(cin: number, cout: number, stride: number, dropout: number) {
    super();
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: cin }));
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1 }));
    this.drop = this.registerModule('drop', new Dropout({ p: dropout }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d({ numFeatures: cout }));
    this.conv2 = this.registerModule('conv2', new Conv2d({ inChannels: cout, outChannels: cout, kernelSize: 3, stride, padding: 1 }));
    if (stride !== 1 || cin !== cout) this.shortcut = this.registerModule('shortcut', new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 1, stride }));
  }
  forward(x: Tensor, { consumeInput = false }: BlockOptions = {}): Tensor {
    const normed = this.bn1.forward(x);
    const a = F.relu(normed);
    normed.dispose();
    // With the dropout inactive (evaluation, or p = 0) conv1 -> BN2 -> ReLU
    // is one convolution (BN2 folded into conv1, the ReLU in its store), and
    // the residual add runs in conv2's store: 3 passes over the block's maps
    // fewer at inference.
    const dropping = this.drop.training && (this.drop.options.p ?? 0.5) > 0;
    const h = dropping ? F.relu(this.bn2.forward(this.drop.forward(this.conv1.forward(a)))) : convBn(this.conv1, this.bn2, a, { relu: true });
    const sc = this.shortcut ? this.shortcut.forward(x) : x;
    const out = convFused(this.conv2, h, { add: sc, consumeAdd: sc !== x || consumeInput });
    a.dispose();
    h.dispose();
    if (sc !== x) sc.dispose();
    return out;
  }
}

export interface WideResNetOptions extends BackboneOptions {
  depth?: number;
  widen?: number;
  dropout?: number;
}

export class WideResNet extends Backbone {
  readonly arch: string;
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[] = [];
  readonly conv1: Conv2d;
  readonly blocks: WideBlock[] = [];
  readonly bn: BatchNorm2d;
  readonly fc: Linear;

  constructor(o: WideResNetOptions = {}) {
    super();
    const depth = o.depth ?? 32;
    const widen = o.widen ?? 4;
    if ((depth - 2) % 6) throw new Error(`WideResNet: depth must be 6n+2, got ${depth}`);
    const n = (depth - 2) / 6;
    const inC = o.inChannels ?? 3;
    const size = o.inputSize ?? 32;
    this.arch = `wrn${depth}_${widen}`;
    this.numClasses = o.numClasses ?? 10;
    this.inputShape = [inC, size, size];
    const stemStride = size >= 64 ? 2 : 1;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: inC, outChannels: 16, kernelSize: 3, stride: stemStride, padding: 1 }));
    let cin = 16;
    let s = size / stemStride;
    [16 * widen, 32 * widen, 64 * widen].forEach((cout, stage) => {
      for (let b = 0; b < n; b++) {
        const stride = stage > 0 && b === 0 ? 2 : 1;
        s = Math.ceil(s / stride);
        const name = `layer${stage + 1}.${b}`;
        this.blocks.push(this.registerModule(name, new WideBlock(cin, cout, stride, o.dropout ?? 0.3)));
        this.taps.push({ name, shape: [cout, s, s] });
        cin = cout;
      }
    });
    this.bn = this.registerModule('bn', new BatchNorm2d({ numFeatures: cin }));
    this.fc = this.registerModule('fc', new Linear({ inFeatures: cin, outFeatures: this.numClasses }));
    initResNetWeights(this);
  }

  override get weightDecay(): number {
    return 5e-4;
  }

  *staged(x: Tensor, { consumeTaps = false }: StagedOptions = {}): StagedForward {
    let h = this.conv1.forward(x);
    let own = true; // the stem's map, or a tap the caller gave back
    for (const block of this.blocks) {
      h = block.forward(h, { consumeInput: own });
      const rows = yield h;
      own = consumeTaps || rows !== undefined; // kept rows are a copy
      h = keepRows(h, rows);
    }
    const features = F.relu(this.bn.forward(h));
    const logits = this.fc.forwardPooled(features);
    features.dispose();
    return logits;
  }
}
