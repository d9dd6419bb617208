// An early-exit network: a frozen backbone, one IC per chosen tap, and the
// backbone's own classifier as the last exit. SDN, ZTW and the ablations are
// configurations of this one composition (see methods.ts).
import { Module } from '../nn/module';
import { releaseTaps, type Backbone } from '../models/backbone';
import { isGradEnabled, noGrad } from '../tensor/grad';
import type { Tensor } from '../tensor/tensor';
import { ICHead, type CascadeOptions } from './head';

export interface EarlyExitOptions {
  /** Indices of the backbone taps that get an IC (default: every tap). */
  taps?: number[];
  cascade?: CascadeOptions;
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
   * Logits of every exit for a batch: [IC 1, ..., IC M-1, backbone]. The
   * backbone runs without gradients; the heads record them when grad mode is on.
   */
  allLogits(x: Tensor): Tensor[] {
    return sharedExitLogits([this], x)[0];
  }

  forward(x: Tensor): Tensor[] {
    return this.allLogits(x);
  }
}

/**
 * Every exit's logits of several networks over one backbone and the same
 * taps (SDN and ZTW heads), in one backbone pass. Each head runs as soon as
 * its tap's features exist, while they are still in cache: keeping all taps
 * and running the heads afterwards measured 1.4x slower at batch 128.
 */
export function sharedExitLogits(nets: EarlyExitNetwork[], x: Tensor): Tensor[][] {
  const base = nets[0];
  if (!base) return [];
  for (const n of nets)
    if (n.backbone !== base.backbone || n.tapIndices.join(',') !== base.tapIndices.join(',')) throw new Error('sharedExitLogits: every network must sit on the same backbone and taps');
  const logits: Tensor[][] = nets.map(() => []);
  // Each tap is read by the heads before the pass resumes; without gradients
  // (which would keep the taps for the heads' backward) the backbone may then
  // reuse its memory, as the runtime does.
  const gen = releaseTaps(base.backbone.staged(x, { consumeTaps: !isGradEnabled() }));
  let tap = 0;
  let head = 0;
  for (let r = noGrad(() => gen.next()); ; r = noGrad(() => gen.next())) {
    if (r.done) {
      for (const l of logits) l.push(r.value);
      return logits;
    }
    if (!base.tapIndices.includes(tap++)) continue;
    const features = r.value;
    // exitForward: without gradients the runtime's own fused head, so that offline outputs equal online ones exactly.
    nets.forEach((n, k) => logits[k].push(n.heads[head].exitForward(features, head > 0 ? logits[k][head - 1] : undefined)[0]));
    head++;
  }
}
