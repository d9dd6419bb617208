// Training checkpoints: a module's state, an optimizer's state and a JSON
// record of progress in one safetensors file, written atomically so that a
// run killed at any moment leaves either the old checkpoint or the new one.
import * as fs from 'node:fs';
import type { Module } from '../nn/module';
import type { Optimizer } from '../optim/optimizer';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import type { Tensor } from '../tensor/tensor';
import { dispose } from '../tensor/scope';

export interface CheckpointParts<P> {
  modules: Record<string, Module>;
  optimizers?: Record<string, Optimizer>;
  progress: P;
}

export function saveCheckpoint<P>(file: string, parts: CheckpointParts<P>): void {
  const tensors = new Map<string, Tensor>();
  const optScalars: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(parts.modules)) for (const [k, t] of m.stateDict()) tensors.set(`${name}.${k}`, t);
  for (const [name, o] of Object.entries(parts.optimizers ?? {})) {
    const sd = o.stateDict();
    for (const [k, t] of sd.tensors) tensors.set(`optim.${name}.${k}`, t);
    optScalars[name] = sd.scalars;
  }
  saveSafetensors(file, tensors, { progress: JSON.stringify(parts.progress), optimizers: JSON.stringify(optScalars) });
}

/** Restores modules and optimizers in place; returns the saved progress. */
export function loadCheckpoint<P>(file: string, parts: Omit<CheckpointParts<P>, 'progress'>): P {
  const { tensors, metadata } = loadSafetensors(file);
  try {
    for (const [name, m] of Object.entries(parts.modules)) {
      const prefix = `${name}.`;
      const own = new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
      m.loadStateDict(own);
    }
    const scalars = JSON.parse(metadata.optimizers ?? '{}');
    for (const [name, o] of Object.entries(parts.optimizers ?? {})) {
      const prefix = `optim.${name}.`;
      const own = new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
      if (!scalars[name]) throw new Error(`checkpoint ${file}: no state for optimizer '${name}'`);
      o.loadStateDict({ tensors: own, scalars: scalars[name] });
    }
    return JSON.parse(metadata.progress ?? 'null') as P;
  } finally {
    dispose([...tensors.values()]);
  }
}

export const checkpointExists = (file: string): boolean => fs.existsSync(file);
