// An early-exit network: a frozen backbone, one IC per chosen tap, and the
// backbone's own classifier as the last exit. SDN, ZTW and the ablations are
// configurations of this one composition (see methods.ts).
import { Module } from '../nn/module';
import type { Backbone } from '../models/backbone';
import { noGrad } from '../tensor/grad';
import type { Tensor } from '../tensor/tensor';
import { ICHead, type CascadeOptions } from './head';

export interface EarlyExitOptions {
  /** Indices of the backbone taps that get an IC (default: every tap). */
  taps?: number[];
  cascade?: CascadeOptions;
}

/** One backbone pass at a network's taps (see EarlyExitNetwork.tapFeatures). */
export interface TapFeatures {
  features: Tensor[];
  final: Tensor;
  backbone: Backbone;
  taps: number[];
}

export class EarlyExitNetwork extends Module {
  readonly heads: ICHead[] = [];
  readonly tapIndices: number[];

  constructor(readonly backbone: Backbone, readonly options: EarlyExitOptions = {}) {
    super();
    this.registerModule('backbone', backbone);
    const taps = options.taps ?? backbone.taps.map((_, i) => i);
    for (const t of taps) if (!Number.isInteger(t) || t < 0 || t >= backbone.taps.length) throw new RangeError(`EarlyExitNetwork: tap ${t} out of range (the backbone has ${backbone.taps.length})`);
    this.tapIndices = [...new Set(taps)].sort((a, b) => a - b);
    const K = backbone.numClasses;
    const inputSize = backbone.inputShape[1];
    this.tapIndices.forEach((t, i) => {
      const shape = backbone.taps[t].shape;
      // The reference strides the IC conv on large maps for 64x64 inputs.
      const stride = inputSize >= 64 && shape.length === 3 && shape[1] > 8 ? 2 : 1;
      this.heads.push(this.registerModule(`heads.${i}`, new ICHead({ tapShape: shape, numClasses: K, previousClasses: i > 0 ? K : 0, cascade: options.cascade, stride })));
    });
  }

  /** Exits: every IC, then the backbone's classifier. */
  get numExits(): number {
    return this.heads.length + 1;
  }

  /** The backbone stays frozen: eval mode (BN statistics untouched) and no gradients. */
  freezeBackbone(): this {
    this.backbone.freeze().eval();
    return this;
  }

  /** The ICs' parameters (what IC training updates). */
  headParameters(): Tensor[] {
    return this.heads.flatMap((h) => h.parameters());
  }

  override train(mode = true): this {
    super.train(mode);
    this.backbone.eval(); // frozen: always eval
    return this;
  }

  /**
   * The backbone's features at this network's taps and its own logits, run
   * without gradients. Networks over the same backbone and taps (SDN and ZTW
   * heads) can share one pass: see exitLogits.
   */
  tapFeatures(x: Tensor): TapFeatures {
    const features: Tensor[] = [];
    const final = noGrad(() => {
      const gen = this.backbone.staged(x);
      let t = 0;
      for (let r = gen.next(); ; r = gen.next()) {
        if (r.done) return r.value;
        if (this.tapIndices.includes(t)) features.push(r.value);
        t++;
      }
    });
    return { features, final, backbone: this.backbone, taps: this.tapIndices };
  }

  /** Logits of every exit from tapFeatures' output; the heads record gradients when grad mode is on. */
  exitLogits(f: TapFeatures): Tensor[] {
    if (f.backbone !== this.backbone || f.taps.join(',') !== this.tapIndices.join(','))
      throw new Error('EarlyExitNetwork.exitLogits: the features come from another backbone or other taps');
    const logits: Tensor[] = [];
    this.heads.forEach((h, i) => logits.push(h.forward(f.features[i], i > 0 ? logits[i - 1] : undefined)));
    logits.push(f.final);
    return logits;
  }

  /** Logits of every exit for a batch: [IC 1, ..., IC M-1, backbone]. */
  allLogits(x: Tensor): Tensor[] {
    return this.exitLogits(this.tapFeatures(x));
  }

  forward(x: Tensor): Tensor[] {
    return this.allLogits(x);
  }
}
