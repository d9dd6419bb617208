// The internal classifier (IC): conv 3x3 + ReLU, SDN pooling to 4x4 with a
// learnable mix of max and average pooling, flatten, and a linear layer that
// (with cascade connections) also reads the previous IC's logits.
import { Module } from '../nn/module';
import { Conv2d, LayerNorm, Linear } from '../nn/layers';
import * as F from '../nn/functional';
import { rand } from '../tensor/create';
import { cat } from '../tensor/create';
import type { Tensor } from '../tensor/tensor';
import { isGradEnabled } from '../tensor/grad';
import { native } from '../tensor/native';
import { wrapHandle, wrapHandles } from '../tensor/tensor';
import type { ExitDecider } from '../runtime/native-book';

export interface CascadeOptions {
  /** Read the previous IC's logits (ZTW); false for SDN's independent heads. */
  enabled: boolean;
  /** Stop the gradient into the previous IC (the reference does; off for the ablation). */
  detach?: boolean;
  /** LayerNorm on the cascade input (the reference's ImageNet and RL runs). */
  layerNorm?: boolean;
}

export interface ICHeadOptions {
  /** Feature shape at the tap for one sample: [C, H, W], or [F] for a flat tap. */
  tapShape: number[];
  numClasses: number;
  /** Classes of the previous IC's logits (0 for the first IC or without cascade). */
  previousClasses?: number;
  cascade?: CascadeOptions;
  /** Conv stride: 2 on maps larger than 8 for 64x64 inputs, as the reference. */
  stride?: number;
  /** Conv output channels (default C; the reference uses C/4 on ImageNet). */
  channels?: number;
}

/** SDN's pooling: alpha * maxpool_k + (1 - alpha) * avgpool_k, k = floor(S/4); none below 4x4. */
export class SDNPool extends Module {
  readonly kernel: number;
  constructor(readonly size: number) {
    super();
    this.kernel = size >= 4 ? Math.floor(size / 4) : 1;
    // One learnable scalar, uniform in [0, 1), not clamped (as the reference).
    this.registerParameter('alpha', rand([1]));
  }
  get alpha(): Tensor {
    return this.param('alpha');
  }
  get outSize(): number {
    return this.size >= 4 ? Math.floor(this.size / this.kernel) : this.size;
  }
  forward(x: Tensor): Tensor {
    if (this.size < 4) return x;
    const a = this.alpha;
    const mx = F.maxPool2d(x, this.kernel);
    const av = F.avgPool2d(x, this.kernel);
    // a*max + (1-a)*avg = avg + a*(max - avg). Not lerp(av, mx, a): libtorch
    // 1.13's lerp with a tensor weight is not vectorised, and made the
    // early-exit runtime 13% slower at batch 128.
    return av.add(mx.sub(av).mul(a));
  }
}

export class ICHead extends Module {
  readonly conv?: Conv2d;
  readonly pool?: SDNPool;
  readonly cascadeNorm?: LayerNorm;
  readonly fc: Linear;
  readonly cascade: Required<CascadeOptions>;
  readonly usesPrevious: boolean;

  constructor(readonly options: ICHeadOptions) {
    super();
    this.cascade = { enabled: false, detach: true, layerNorm: false, ...options.cascade };
    const prevK = this.cascade.enabled ? options.previousClasses ?? 0 : 0;
    this.usesPrevious = prevK > 0;
    let features: number;
    if (options.tapShape.length === 3) {
      const [c, s] = options.tapShape;
      const stride = options.stride ?? 1;
      const cout = options.channels ?? c;
      this.conv = this.registerModule('conv', new Conv2d({ inChannels: c, outChannels: cout, kernelSize: 3, stride, padding: 1 }));
      const s2 = Math.floor((s + 2 - 3) / stride) + 1;
      this.pool = this.registerModule('pool', new SDNPool(s2));
      features = cout * this.pool.outSize ** 2;
    } else {
      features = options.tapShape.reduce((a, b) => a * b, 1);
    }
    if (this.usesPrevious && this.cascade.layerNorm) this.cascadeNorm = this.registerModule('cascade_norm', new LayerNorm({ normalizedShape: [prevK] }));
    this.fc = this.registerModule('fc', new Linear({ inFeatures: features + prevK, outFeatures: options.numClasses }));
  }

  /** Logits from the tap's features and, with cascade, the previous IC's logits. */
  forward(features: Tensor, previousLogits?: Tensor): Tensor {
    let h = features;
    if (this.conv && this.pool) h = this.pool.forward(F.relu(this.conv.forward(h)));
    h = h.flatten(1);
    if (this.usesPrevious) {
      if (!previousLogits) throw new Error('ICHead: this head has a cascade input; pass the previous IC\'s logits');
      // Without gradients (inference) there is nothing to stop: skip the op.
      let p = this.cascade.detach && isGradEnabled() ? previousLogits.detach() : previousLogits;
      if (this.cascadeNorm) p = this.cascadeNorm.forward(p);
      h = cat([h, p], 1);
    }
    return this.fc.forward(h);
  }

  /**
   * Inference: [logits, log-probabilities]. Without gradients the whole head
   * runs in one native call (native/src/ops_exits.cc: forward()'s formula,
   * with the ReLU and pooling in one pass, equal up to float rounding); with
   * them, or with a LayerNorm on the cascade input, it composes forward()
   * and a log-softmax. Offline collection and the runtime both call this.
   */
  exitForward(features: Tensor, previousLogits?: Tensor): [Tensor, Tensor] {
    if (isGradEnabled() || this.cascadeNorm) {
      const logits = this.forward(features, previousLogits);
      return [logits, F.logSoftmax(logits, 1)];
    }
    const [logits, logProbs] = wrapHandles(this.nativeHead(features, previousLogits));
    return [logits, logProbs];
  }

  /**
   * The runtime's step: exitForward's numbers, the log-probabilities read
   * out at once as a Float32Array ([N * K]), which saves a tensor handle, a
   * read and a free per exit. With `into` (exactly N * K values) they are
   * written there: a runtime passes the same memory at every exit. With
   * `decide` (and `into`) the native call also takes the exit's step in the
   * runtime's book (runtime/native-book.ts); `decided` says whether it did
   * (not with gradients or a LayerNorm, where the caller takes it). When it
   * did and some samples left while others stay, `logits` holds only the
   * rows that stay and `kept` their positions (int32), in the book's order.
   */
  exitStep(features: Tensor, previousLogits?: Tensor, into?: Float32Array, decide?: ExitDecider): { logits: Tensor; logProbs: Float32Array; decided: boolean; kept?: Tensor } {
    if (isGradEnabled() || this.cascadeNorm) {
      const [logits, lp] = this.exitForward(features, previousLogits);
      const values = lp.data() as Float32Array;
      lp.dispose();
      if (into && into.length !== values.length) throw new RangeError(`ICHead.exitStep: ${values.length} log-probabilities for room of ${into.length}`);
      into?.set(values);
      return { logits, logProbs: into ?? values, decided: false };
    }
    if (decide && !into) throw new Error('ICHead.exitStep: deciding in the head needs `into`');
    // The shape is read only without `into`: the native head checks the room (a shape read is a native call, ~1.4 us).
    const logProbs = into ?? new Float32Array(features.shape[0] * this.fc.options.outFeatures);
    const out = this.nativeHead(features, previousLogits, logProbs, decide);
    if (!Array.isArray(out)) return { logits: wrapHandle(out), logProbs, decided: decide !== undefined };
    const [logits, kept] = wrapHandles(out);
    return { logits, logProbs, decided: true, kept };
  }

  private nativeHead(features: Tensor, previousLogits: Tensor | undefined, logProbsInto?: Float32Array, decide?: ExitDecider) {
    if (this.usesPrevious && !previousLogits) throw new Error('ICHead: this head has a cascade input; pass the previous IC\'s logits');
    const conv = this.conv;
    const pooled = this.pool && this.pool.size >= 4 ? this.pool : undefined;
    return native.icHead(
      features.handle,
      conv?.weight.handle,
      conv?.bias?.handle,
      conv?.options.stride ?? 1,
      conv?.options.padding ?? 0,
      pooled?.alpha.handle,
      pooled ? pooled.kernel : 0,
      this.fc.weight.handle,
      this.fc.bias?.handle,
      this.usesPrevious ? previousLogits?.handle : undefined,
      logProbsInto,
      decide?.book,
      decide?.exit,
      decide?.tau,
    );
  }
}
