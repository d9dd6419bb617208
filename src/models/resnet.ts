// CIFAR ResNets (ResNet-20/56/110: basic blocks, 16/32/64 channels) and the
// tap after each block's `conv + shortcut`, before its last ReLU.
import { Backbone, forwardBlocks, nextInput, readsThroughRows, type BackboneOptions, type BlockOptions, type StagedForward, type StagedOptions, type TapInfo } from './backbone';
import { Module } from '../nn/module';
import { BatchNorm2d, Conv2d, Linear, Sequential } from '../nn/layers';
import { convBn } from '../nn/fused';
import * as F from '../nn/functional';
import type { Tensor } from '../tensor/tensor';
import { initResNetWeights } from './init';

export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly shortcut?: Sequential;
  constructor(readonly options: { inChannels: number; outChannels: number; stride: number }) {
    super();
    const { inChannels: cin, outChannels: cout, stride } = options;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: cout }));
    this.conv2 = this.registerModule('conv2', new Conv2d({ inChannels: cout, outChannels: cout, kernelSize: 3, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d({ numFeatures: cout }));
    if (stride !== 1 || cin !== cout)
      this.shortcut = this.registerModule('shortcut', new Sequential(new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 1, stride, bias: false }), new BatchNorm2d({ numFeatures: cout })));
  }
  /** conv + shortcut, before the final ReLU: where an IC taps. */
  preActivation(x: Tensor, options: BlockOptions = {}): Tensor {
    return this.block(x, false, options);
  }
  /** The whole block: the final ReLU runs inside the second convolution's store. */
  forward(x: Tensor, options: BlockOptions = {}): Tensor {
    return this.block(x, true, options);
  }
  /**
   * Whether the block reads kept rows through their index (BlockOptions.rows)
   * and a pending ReLU on the way, without a copy or a pass of its own: an
   * identity block of 16 channels, whose convolutions the 16-channel loop
   * runs (native/src/conv16.cc); elsewhere each convolution would copy the
   * rows itself.
   */
  get readsRows(): boolean {
    const { inChannels, outChannels, stride } = this.options;
    return !this.shortcut && inChannels === 16 && outChannels === 16 && stride === 1;
  }

  private block(x: Tensor, relu: boolean, { consumeInput = false, reluInput = false, rows }: BlockOptions): Tensor {
    if (rows && !this.readsRows) {
      const kept = x.takeRows(rows, { relu: reluInput });
      const out = this.block(kept, relu, { consumeInput: true });
      kept.dispose();
      return out;
    }
    if (this.readsRows && (rows || reluInput)) {
      // The stage-1 copy after an exit was ~1-2 us a row in situ at batch 128:
      // read through the index instead. With no rows, the pending ReLU on the
      // way too, where a pass of its own over the map had cost ~2 us a block
      // at batch 1; the result then goes into x's memory when given up.
      const r = convBn(this.conv1, this.bn1, x, { relu: true, reluInput, inRows: rows, keepInput: true });
      const out = convBn(this.conv2, this.bn2, r, { add: x, relu, addRows: rows, reluAdd: reluInput, consumeAdd: !rows && consumeInput });
      r.dispose();
      return out;
    }
    // Intermediates are freed as soon as they are used (autograd keeps its
    // own references): a pass then reuses cache-warm blocks instead of
    // holding every activation of the network until its scope ends.
    const r = convBn(this.conv1, this.bn1, x, { relu: true, reluInput }); // with reluInput, x (and the identity shortcut) is relu(x) from here on
    const sc = this.shortcut ? convBn(this.shortcut.layers[0] as Conv2d, this.shortcut.layers[1] as BatchNorm2d, x) : x;
    const out = convBn(this.conv2, this.bn2, r, { add: sc, relu, consumeAdd: sc !== x || consumeInput });
    r.dispose();
    if (sc !== x) sc.dispose();
    return out;
  }
}

export interface CifarResNetOptions extends BackboneOptions {
  /** 6n + 2: 20, 32, 44, 56, 110. */
  depth?: number;
}

export class CifarResNet extends Backbone {
  readonly arch: string;
  readonly numClasses: number;
  readonly inputShape: number[];
  readonly taps: TapInfo[] = [];
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly blocks: BasicBlock[] = [];
  readonly fc: Linear;

  constructor(o: CifarResNetOptions = {}) {
    super();
    const depth = o.depth ?? 56;
    if ((depth - 2) % 6) throw new Error(`CifarResNet: depth must be 6n+2, got ${depth}`);
    const n = (depth - 2) / 6;
    const inC = o.inChannels ?? 3;
    const size = o.inputSize ?? 32;
    this.arch = `resnet${depth}`;
    this.numClasses = o.numClasses ?? 10;
    this.inputShape = [inC, size, size];
    const stemStride = size >= 64 ? 2 : 1;
    this.conv1 = this.registerModule('conv1', new Conv2d({ inChannels: inC, outChannels: 16, kernelSize: 3, stride: stemStride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d({ numFeatures: 16 }));
    let cin = 16;
    let s = size / stemStride;
    [16, 32, 64].forEach((cout, stage) => {
      for (let b = 0; b < n; b++) {
        const stride = stage > 0 && b === 0 ? 2 : 1;
        s = Math.ceil(s / stride);
        const name = `layer${stage + 1}.${b}`;
        this.blocks.push(this.registerModule(name, new BasicBlock({ inChannels: cin, outChannels: cout, stride })));
        this.taps.push({ name, shape: [cout, s, s] });
        cin = cout;
      }
    });
    this.fc = this.registerModule('fc', new Linear({ inFeatures: 64, outFeatures: this.numClasses }));
    initResNetWeights(this);
  }

  *staged(x: Tensor, { consumeTaps = false }: StagedOptions = {}): StagedForward {
    let h = this.stem(x);
    let pending = false; // h is (rows of) the last tap, its ReLU left to the next block
    let through: Tensor | undefined; // h is the last tap (the caller's), of which these rows go on, read through the index
    let last: Tensor | undefined; // the last tap
    for (const [i, block] of this.blocks.entries()) {
      const tap = block.preActivation(h, through ? { reluInput: true, rows: through } : { consumeInput: true, reluInput: pending });
      if (h !== last) h.dispose(); // the block's input (a view when rows moved in place); a tap stays the caller's
      const rows = yield (last = tap);
      // The caller's index stays valid until the next yield, as the tap does.
      through = readsThroughRows(rows) && this.blocks[i + 1]?.readsRows ? rows : undefined;
      if (through) h = tap;
      else ({ input: h, reluPending: pending } = nextInput(tap, rows, consumeTaps));
    }
    return this.head(pending ? F.relu(h, { inPlace: true }) : h);
  }

  /**
   * The plain forward: with no taps to hand out, each block's final ReLU runs
   * inside its second convolution (staged() must stop before it, where the
   * ICs tap): one pass less over every block's maps.
   */
  override forward(x: Tensor): Tensor {
    return this.head(forwardBlocks(this.stem(x), this.blocks));
  }

  private stem(x: Tensor): Tensor {
    return convBn(this.conv1, this.bn1, x, { relu: true });
  }
  private head(h: Tensor): Tensor {
    return this.fc.forwardPooled(h);
  }
}
