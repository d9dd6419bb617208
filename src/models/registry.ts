// Backbones by their command-line names.
import type { Backbone, BackboneOptions } from './backbone';
import { CifarResNet } from './resnet';
import { VGG16BN } from './vgg';
import { WideResNet } from './wrn';
import { MobileNet } from './mobilenet';
import { NatureCNN } from './naturecnn';
import { ResNet50 } from './resnet50';

const FACTORIES: Record<string, (o: BackboneOptions) => Backbone> = {
  resnet20: (o) => new CifarResNet({ ...o, depth: 20 }),
  resnet56: (o) => new CifarResNet({ ...o, depth: 56 }),
  resnet110: (o) => new CifarResNet({ ...o, depth: 110 }),
  vgg16bn: (o) => new VGG16BN(o),
  wrn32_4: (o) => new WideResNet({ ...o, depth: 32, widen: 4 }),
  mobilenet: (o) => new MobileNet(o),
  naturecnn: (o) => new NatureCNN(o),
  resnet50: (o) => new ResNet50(o),
};

export const ARCHITECTURES = Object.keys(FACTORIES);

export function createBackbone(arch: string, o: BackboneOptions = {}): Backbone {
  const make = FACTORIES[arch];
  if (!make) throw new Error(`unknown architecture '${arch}' (known: ${ARCHITECTURES.join(', ')})`);
  return make(o);
}
