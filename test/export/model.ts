// Small early-exit networks with random weights for the export tests: BN
// running statistics and affine parameters are set to non-trivial values so
// that conv-BN folding is exercised, and the classifiers are scaled so that
// confidences spread over (0, 1) instead of sitting at 1/K.
import { CifarResNet } from '../../src/models/resnet';
import { WideResNet } from '../../src/models/wrn';
import type { Backbone } from '../../src/models/backbone';
import { EarlyExitNetwork } from '../../src/exits/network';
import { ExitEnsembles, type EnsembleKind } from '../../src/exits/ensemble';
import { BatchNorm2d, Linear } from '../../src/nn/layers';
import { manualSeed, rand, randn } from '../../src/tensor/create';
import { noGrad } from '../../src/tensor/grad';
import { tidy } from '../../src/tensor/scope';
import type { Module } from '../../src/nn/module';

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export interface TinyOptions {
  arch?: 'resnet8' | 'wrn8';
  cascade?: boolean;
  ensemble?: EnsembleKind | null;
  taps?: number[];
  channelsLast?: boolean;
  seed?: number;
  inChannels?: number;
  inputSize?: number;
  numClasses?: number;
  /** Multiplier of the classifiers' weights: larger spreads the confidences. */
  sharpness?: number;
}

export function randomise(m: Module, sharpness: number): void {
  noGrad(() =>
    tidy(() => {
      for (const [, mod] of m.namedModules()) {
        if (mod instanceof BatchNorm2d) {
          const n = mod.options.numFeatures;
          mod.runningMean?.copy_(randn([n]).mul(0.3));
          mod.runningVar?.copy_(rand([n]).mul(1.5).add(0.4));
          mod.weight?.copy_(rand([n]).add(0.5));
          mod.bias?.copy_(randn([n]).mul(0.2));
        }
        if (mod instanceof Linear) mod.weight.mul_(sharpness);
      }
    }),
  );
}

export function tinyNetwork(o: TinyOptions = {}): { net: EarlyExitNetwork; ensembles: ExitEnsembles | null } {
  manualSeed(o.seed ?? 1);
  const common = { numClasses: o.numClasses ?? 10, inChannels: o.inChannels ?? 1, inputSize: o.inputSize ?? 32 };
  const backbone: Backbone = o.arch === 'wrn8' ? new WideResNet({ ...common, depth: 8, widen: 1 }) : new CifarResNet({ ...common, depth: 8 });
  const net = new EarlyExitNetwork(backbone, { taps: o.taps, cascade: { enabled: o.cascade ?? true, detach: true } });
  randomise(net, o.sharpness ?? 12);
  if (o.channelsLast) {
    backbone.toMemoryFormat('channels_last');
    net.heads.forEach((h) => h.toMemoryFormat('channels_last'));
  }
  net.eval();
  const kind = o.ensemble === undefined ? 'geometric' : o.ensemble;
  let ensembles: ExitEnsembles | null = null;
  if (kind) {
    ensembles = new ExitEnsembles({ numExits: net.numExits, numClasses: common.numClasses, kind });
    if (kind !== 'mean')
      noGrad(() =>
        tidy(() => {
          const sd = ensembles!.stateDict();
          sd.get('weight')!.copy_(randn(sd.get('weight')!.shape).mul(0.5));
          sd.get('bias')!.copy_(randn(sd.get('bias')!.shape).mul(0.3));
        }),
      );
    ensembles.eval();
  }
  return { net, ensembles };
}
