// ResNet-50, ImageNet layout (bottlenecks [3, 4, 6, 3]); a tap after every
// bottleneck's `conv + shortcut`. Used for the cost model and ImageNet runs.
import { Backbone, forwardBlocks, reluKeepRows, type BackboneOptions, type BlockOptions, type StagedForward, type StagedOptions, type TapInfo } from './backbone';
import { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Linear, MaxPool2d, Sequential } from '../nn/layers';
import { convBn } from '../nn/fused';
import type { Tensor } from '../tensor/tensor';
import { initResNetWeights } from './init';

class Bottleneck extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample?: Sequential;
  constructor(cin: number, width: number, stride: number) {
    super();
    const cout = width * 4;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: cin, outChannels: width, kernelSize: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: width }));
    this.conv2 = this.registerModule('conv2', new Conv2d({ inChannels: width, outChannels: width, kernelSize: 3, stride, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d({ numFeatures: width }));
    this.conv3 = this.registerModule('conv3', new Conv2d({ inChannels: width, outChannels: cout, kernelSize: 1, bias: false }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d({ numFeatures: cout }));
    if (stride !== 1 || cin !== cout)
      this.downsample = this.registerModule('downsample', new Sequential(new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 1, stride, bias: false }), new BatchNorm2d({ numFeatures: cout })));
  }
  /** conv + shortcut, before the final ReLU: where an IC taps. */
  preActivation(x: Tensor, options: BlockOptions = {}): Tensor {
    return this.block(x, false, options);
  }
  /** The whole bottleneck: the final ReLU runs inside the last convolution's store. */
  forward(x: Tensor, options: BlockOptions = {}): Tensor {
    return this.block(x, true, options);
  }
  private block(x: Tensor, relu: boolean, { consumeInput = false }: BlockOptions): Tensor {
    // As CIFAR ResNet's block: ReLUs and the residual add fused, intermediates freed when used.
    const a = convBn(this.conv1, this.bn1, x, { relu: true });
    const b = convBn(this.conv2, this.bn2, a, { relu: true });
    a.dispose();
    const sc = this.downsample ? convBn(this.downsample.layers[0] as Conv2d, this.downsample.layers[1] as BatchNorm2d, x) : x;
    const out = convBn(this.conv3, this.bn3, b, { add: sc, relu, consumeAdd: sc !== x || consumeInput });
    b.dispose();
    if (sc !== x) sc.dispose();
    return out;
  }
}

export class ResNet50 extends Backbone {
  readonly arch = 'resnet50';
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[] = [];
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly pool: MaxPool2d;
  readonly blocks: Bottleneck[] = [];
  readonly fc: Linear;

  constructor(o: BackboneOptions = {}) {
    super();
    const inC = o.inChannels ?? 3;
    const size = o.inputSize ?? 224;
    this.numClasses = o.numClasses ?? 1000;
    this.inputShape = [inC, size, size];
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: inC, outChannels: 64, kernelSize: 7, stride: 2, padding: 3, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: 64 }));
    this.pool = this.registerModule('maxpool', new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }));
    let s = Math.floor((Math.floor((size + 6 - 7) / 2) + 1 + 2 - 3) / 2) + 1;
    let cin = 64;
    [3, 4, 6, 3].forEach((count, stage) => {
      const width = 64 * 2 ** stage;
      for (let b = 0; b < count; b++) {
        const stride = stage > 0 && b === 0 ? 2 : 1;
        s = Math.ceil(s / stride);
        const name = `layer${stage + 1}.${b}`;
        this.blocks.push(this.registerModule(name, new Bottleneck(cin, width, stride)));
        this.taps.push({ name, shape: [width * 4, s, s] });
        cin = width * 4;
      }
    });
    this.fc = this.registerModule('fc', new Linear({ inFeatures: 2048, outFeatures: this.numClasses }));
    initResNetWeights(this);
  }

  *staged(x: Tensor, { consumeTaps = false }: StagedOptions = {}): StagedForward {
    let h = this.stem(x);
    for (const block of this.blocks) {
      const tap = block.preActivation(h, { consumeInput: true });
      h.dispose(); // the block's input; the tap stays the caller's
      h = reluKeepRows(tap, yield tap, consumeTaps);
    }
    return this.head(h);
  }

  /** The plain forward: each bottleneck whole, its final ReLU fused (forwardBlocks). */
  override forward(x: Tensor): Tensor {
    return this.head(forwardBlocks(this.stem(x), this.blocks));
  }

  private stem(x: Tensor): Tensor {
    return this.pool.forward(convBn(this.conv1, this.bn1, x, { relu: true }));
  }
  private head(h: Tensor): Tensor {
    return this.fc.forwardPooled(h);
  }
}
