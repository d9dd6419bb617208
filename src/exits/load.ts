// Rebuilds a trained early-exit model from an experiment's files: backbone
// weights, the heads' checkpoint and the ensemble of one method.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createBackbone } from '../models/registry';
import { loadSafetensors } from '../io/safetensors';
import { dispose } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { EarlyExitNetwork } from './network';
import { ExitEnsembles } from './ensemble';
import { HEAD_CASCADE, methodSpec } from './methods';

export interface TrainedModelFiles {
  arch: string;
  numClasses: number;
  inputShape: [number, number, number];
  /** Backbone weights (safetensors). */
  backbone: string;
  /** The seed directory of a run: heads-<kind>.ckpt.safetensors and ensemble-<method>.safetensors. */
  seedDir: string;
  method: string;
}

function prefixed(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  return new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
}

export function loadTrainedModel(f: TrainedModelFiles): { net: EarlyExitNetwork; ensembles: ExitEnsembles | null } {
  const spec = methodSpec(f.method);
  const [c, h] = f.inputShape;
  const backbone = createBackbone(f.arch, { numClasses: f.numClasses, inChannels: c, inputSize: h });
  const bb = loadSafetensors(f.backbone);
  backbone.loadStateDict(bb.tensors);
  dispose([...bb.tensors.values()]);
  backbone.toMemoryFormat('channels_last').freeze().eval();
  const net = new EarlyExitNetwork(backbone, { cascade: HEAD_CASCADE[spec.heads] });
  const headsFile = path.join(f.seedDir, `heads-${spec.heads}.ckpt.safetensors`);
  if (!fs.existsSync(headsFile)) throw new Error(`no trained ${spec.heads} heads in ${f.seedDir} (expected ${path.basename(headsFile)})`);
  const heads = loadSafetensors(headsFile);
  const own = prefixed(heads.tensors, 'net.heads.');
  net.heads.forEach((head, i) => head.loadStateDict(prefixed(own, `${i}.`)));
  dispose([...heads.tensors.values()]);
  net.heads.forEach((hd) => hd.toMemoryFormat('channels_last'));
  let ensembles: ExitEnsembles | null = null;
  if (spec.ensemble) {
    const file = path.join(f.seedDir, `ensemble-${f.method}.safetensors`);
    if (!fs.existsSync(file)) throw new Error(`no trained ensemble for ${f.method} in ${f.seedDir}`);
    ensembles = new ExitEnsembles({ numExits: net.numExits, numClasses: f.numClasses, kind: spec.ensemble });
    const e = loadSafetensors(file);
    ensembles.loadStateDict(e.tensors);
    dispose([...e.tensors.values()]);
  }
  net.eval();
  return { net, ensembles };
}
