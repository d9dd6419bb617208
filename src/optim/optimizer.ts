// Optimizer base: parameters, per-parameter state tensors, a learning rate
// that schedulers change, and a state that checkpoints can save and restore.
import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { noGrad } from '../tensor/grad';

export abstract class Optimizer {
  lr: number;
  stepCount = 0;
  protected readonly state: Map<string, Tensor>[];

  constructor(readonly params: Tensor[], lr: number) {
    if (!(lr > 0)) throw new RangeError(`optimizer: lr must be positive, got ${lr}`);
    this.lr = lr;
    this.state = params.map(() => new Map());
  }

  /** One update from the gradients accumulated so far (parameters without one are skipped). */
  step(): void {
    this.stepCount++;
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = p.grad;
        if (!g) return;
        try {
          this.update(p, g, this.state[i]);
        } finally {
          g.dispose();
        }
      });
    });
  }

  protected abstract update(p: Tensor, grad: Tensor, state: Map<string, Tensor>): void;

  protected stateTensor(state: Map<string, Tensor>, name: string, init: () => Tensor): Tensor {
    let t = state.get(name);
    if (!t) state.set(name, (t = keep(init())));
    return t;
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = undefined;
  }

  /** Tensors keyed `<param index>.<name>`, plus the scalars a checkpoint needs. */
  stateDict(): { tensors: Map<string, Tensor>; scalars: { lr: number; stepCount: number } } {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((s, i) => s.forEach((t, n) => tensors.set(`${i}.${n}`, t)));
    return { tensors, scalars: { lr: this.lr, stepCount: this.stepCount } };
  }

  loadStateDict(sd: { tensors: Map<string, Tensor>; scalars: { lr: number; stepCount: number } }): void {
    // Validate and copy first: a bad key leaves the current state intact, and
    // loading this optimizer's own stateDict() does not read disposed tensors.
    const entries: [number, string, Tensor][] = [];
    for (const key of sd.tensors.keys()) {
      const dot = key.indexOf('.');
      const i = Number(key.slice(0, dot));
      if (dot < 1 || !Number.isInteger(i) || i < 0 || i >= this.state.length) throw new Error(`optimizer state: no parameter ${key.slice(0, dot)} (have ${this.state.length})`);
    }
    for (const [key, t] of sd.tensors) {
      const dot = key.indexOf('.');
      entries.push([Number(key.slice(0, dot)), key.slice(dot + 1), keep(t.clone())]);
    }
    for (const s of this.state) {
      for (const t of s.values()) t.dispose();
      s.clear();
    }
    for (const [i, name, t] of entries) this.state[i].set(name, t);
    this.lr = sd.scalars.lr;
    this.stepCount = sd.scalars.stepCount;
  }

  dispose(): void {
    for (const s of this.state) for (const t of s.values()) t.dispose();
  }
}
