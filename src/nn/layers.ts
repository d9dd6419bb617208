// Standard layers with options-object constructors and PyTorch's defaults.
import { Module } from './module';
import * as F from './functional';
import { Tensor } from '../tensor/tensor';
import { empty, ones, zeros, scalar } from '../tensor/create';
import { biasUniform, kaimingUniformDefault, fans } from './init';
import { profiling } from './profiler';
import { tidy } from '../tensor/scope';

type Pair = number | [number, number];

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}
export class Conv2d extends Module {
  readonly options: Required<Conv2dOptions>;
  constructor(o: Conv2dOptions) {
    super();
    this.options = { stride: 1, padding: 0, dilation: 1, groups: 1, bias: true, ...o };
    const { inChannels, outChannels, groups } = this.options;
    if (inChannels % groups || outChannels % groups) throw new Error(`Conv2d: channels ${inChannels}->${outChannels} not divisible by groups ${groups}`);
    const [kh, kw] = typeof o.kernelSize === 'number' ? [o.kernelSize, o.kernelSize] : o.kernelSize;
    const w = kaimingUniformDefault(empty([outChannels, inChannels / groups, kh, kw]));
    this.registerParameter('weight', w);
    this.registerParameter('bias', this.options.bias ? biasUniform(empty([outChannels]), fans(w).fanIn) : undefined);
  }
  get weight(): Tensor { return this.param('weight'); }
  get bias(): Tensor | undefined { return this.param('bias'); }
  forward(x: Tensor): Tensor {
    const { stride, padding, dilation, groups } = this.options;
    return F.conv2d(x, this.weight, this.bias, { stride, padding, dilation, groups });
  }
}

export interface LinearOptions { inFeatures: number; outFeatures: number; bias?: boolean }
export class Linear extends Module {
  readonly options: Required<LinearOptions>;
  constructor(o: LinearOptions) {
    super();
    this.options = { bias: true, ...o };
    const w = kaimingUniformDefault(empty([o.outFeatures, o.inFeatures]));
    this.registerParameter('weight', w);
    this.registerParameter('bias', this.options.bias ? biasUniform(empty([o.outFeatures]), o.inFeatures) : undefined);
  }
  get weight(): Tensor { return this.param('weight'); }
  get bias(): Tensor | undefined { return this.param('bias'); }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  /**
   * The classifier over the global average of x's maps ([N, C, H, W]):
   * forward(adaptiveAvgPool2d(x, 1).flatten(1)) in one native call, which
   * at batch 1 took 60-75 us as three ops running cold at the end of a pass.
   * Under the profiler the ops themselves, so that the cost model and a
   * profile list them (the pooling outside this layer) as before.
   */
  forwardPooled(x: Tensor): Tensor {
    if (!profiling()) return F.poolLinear(x, this.weight, this.bias);
    const flat = tidy(() => F.adaptiveAvgPool2d(x, 1).flatten(1));
    const y = this.forward(flat);
    flat.dispose();
    return y;
  }
}

export interface BatchNorm2dOptions { numFeatures: number; eps?: number; momentum?: number; affine?: boolean; trackRunningStats?: boolean }
export class BatchNorm2d extends Module {
  readonly options: Required<BatchNorm2dOptions>;
  constructor(o: BatchNorm2dOptions) {
    super();
    this.options = { eps: 1e-5, momentum: 0.1, affine: true, trackRunningStats: true, ...o };
    const n = o.numFeatures;
    this.registerParameter('weight', this.options.affine ? ones([n]) : undefined);
    this.registerParameter('bias', this.options.affine ? zeros([n]) : undefined);
    this.registerBuffer('running_mean', this.options.trackRunningStats ? zeros([n]) : undefined);
    this.registerBuffer('running_var', this.options.trackRunningStats ? ones([n]) : undefined);
    this.registerBuffer('num_batches_tracked', this.options.trackRunningStats ? scalar(0, 'int64') : undefined);
  }
  get weight(): Tensor | undefined { return this.param('weight'); }
  get bias(): Tensor | undefined { return this.param('bias'); }
  get runningMean(): Tensor | undefined { return this.buffer('running_mean'); }
  get runningVar(): Tensor | undefined { return this.buffer('running_var'); }
  /** Incremented in place by every training-mode forward: the one update of the running statistics that bumps a version (libtorch's batch_norm kernel writes them without). */
  get numBatchesTracked(): Tensor | undefined { return this.buffer('num_batches_tracked'); }
  forward(x: Tensor): Tensor {
    const useBatchStats = this.training || !this.runningMean;
    if (this.training && this.runningMean) this.buffer('num_batches_tracked').add_(1);
    return F.batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: useBatchStats,
      momentum: this.options.momentum,
      eps: this.options.eps,
    });
  }
}

export interface LayerNormOptions { normalizedShape: number[]; eps?: number; elementwiseAffine?: boolean }
export class LayerNorm extends Module {
  readonly options: Required<LayerNormOptions>;
  constructor(o: LayerNormOptions) {
    super();
    this.options = { eps: 1e-5, elementwiseAffine: true, ...o };
    this.registerParameter('weight', this.options.elementwiseAffine ? ones(o.normalizedShape) : undefined);
    this.registerParameter('bias', this.options.elementwiseAffine ? zeros(o.normalizedShape) : undefined);
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.options.normalizedShape, this.param('weight'), this.param('bias'), this.options.eps);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class Dropout extends Module {
  constructor(readonly options: { p?: number } = {}) {
    super();
    const p = options.p ?? 0.5;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.options.p ?? 0.5, this.training);
  }
}

export interface Pool2dOptions { kernelSize: Pair; stride?: Pair; padding?: Pair; ceilMode?: boolean }
export class MaxPool2d extends Module {
  constructor(readonly options: Pool2dOptions & { dilation?: Pair }) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.options.kernelSize, this.options);
  }
}
export class AvgPool2d extends Module {
  constructor(readonly options: Pool2dOptions & { countIncludePad?: boolean }) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.options.kernelSize, this.options);
  }
}
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly options: { outputSize: Pair }) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.options.outputSize);
  }
}

export class Flatten extends Module {
  constructor(readonly options: { startDim?: number; endDim?: number } = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.options.startDim ?? 1, this.options.endDim ?? -1);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Runs its children in order; keys are their indices, as PyTorch's. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    for (const m of this.layers) x = m.forward(x) as Tensor;
    return x;
  }
}
