// The cost model: multiply-adds and FLOPs of one input, per layer, per tap
// (cumulative cost of the backbone up to that tap) and in total.
import type { Backbone } from './backbone';
import type { Module } from '../nn/module';
import { collectCosts, withLayerName, type OpCost } from '../nn/profiler';
import { zeros } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';

export interface LayerCost { name: string; op: string; outShape: number[]; macs: number; flops: number }
export interface TapCost { name: string; macs: number; flops: number }
export interface CostReport { arch: string; inputShape: number[]; macs: number; flops: number; taps: TapCost[]; layers: LayerCost[] }

/** Runs fn with every module of root announcing its dotted name to the profiler. */
function withModuleNames<T>(root: Module, fn: () => T): T {
  const patched: Module[] = [];
  for (const [name, m] of root.namedModules()) {
    const original = m.forward;
    m.forward = (...args: unknown[]) => withLayerName(name, () => original.apply(m, args));
    patched.push(m);
  }
  try {
    return fn();
  } finally {
    // Removing the own property brings the prototype's forward back.
    for (const m of patched) delete (m as { forward?: unknown }).forward;
  }
}

const sum = (ops: OpCost[], k: 'macs' | 'flops'): number => ops.reduce((s, o) => s + o[k], 0);

/** Profiles one sample through the backbone in eval mode. */
export function backboneCost(backbone: Backbone, inputShape: number[] = backbone.inputShape): CostReport {
  const wasTraining = backbone.training;
  backbone.eval();
  const marks: number[] = [];
  let ops: OpCost[] = [];
  try {
    ops = noGrad(() =>
      tidy(() =>
        collectCosts((soFar) =>
          withModuleNames(backbone, () => {
            const gen = backbone.staged(zeros([1, ...inputShape]));
            for (let r = gen.next(); !r.done; r = gen.next()) marks.push(soFar.length);
          }),
        ),
      ),
    );
  } finally {
    backbone.train(wasTraining);
  }
  const taps = marks.map((upto, i) => {
    const prefix = ops.slice(0, upto);
    return { name: backbone.taps[i]?.name ?? `tap${i}`, macs: sum(prefix, 'macs'), flops: sum(prefix, 'flops') };
  });
  return { arch: backbone.arch, inputShape, macs: sum(ops, 'macs'), flops: sum(ops, 'flops'), taps, layers: ops.map(toLayer) };
}

const toLayer = (o: OpCost): LayerCost => ({ name: o.layer, op: o.op, outShape: o.outShape, macs: o.macs, flops: o.flops });

/** Cost of one call of any module (a head, an ensemble) on given inputs. */
export function moduleCost(m: Module, makeInputs: () => Tensor[]): { macs: number; flops: number; layers: LayerCost[] } {
  const ops = noGrad(() => tidy(() => collectCosts(() => withModuleNames(m, () => void m.forward(...makeInputs())))));
  return { macs: sum(ops, 'macs'), flops: sum(ops, 'flops'), layers: ops.map(toLayer) };
}
