// nn.Module: an explicit tree of parameters, buffers and sub-modules.
// train(bool)/eval() switch behaviour (dropout, batch-norm statistics);
// freeze() is separate and only turns gradients off.
import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { noGrad } from '../tensor/grad';
import { noteTensorWrite } from '../tensor/versions';

export class StateDictError extends Error {
  constructor(readonly missing: string[], readonly unexpected: string[], readonly mismatched: string[]) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys: ${missing.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (mismatched.length) parts.push(`size mismatch: ${mismatched.join('; ')}`);
    super(`loadStateDict: ${parts.join(' | ')}`);
    this.name = 'StateDictError';
  }
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor | undefined>();
  private readonly buffers = new Map<string, Tensor | undefined>();
  private readonly children = new Map<string, Module>();

  abstract forward(...inputs: unknown[]): unknown;

  // Every change of which tensor a name holds counts as a write: caches of
  // derived values (tensor/versions.ts) then look at their sources again.
  protected registerParameter(name: string, t: Tensor | undefined): Tensor {
    if (t) keep(t).requiresGrad_(true);
    this.params.set(name, t);
    noteTensorWrite();
    return t as Tensor;
  }
  protected registerBuffer(name: string, t: Tensor | undefined): Tensor {
    if (t) keep(t);
    this.buffers.set(name, t);
    noteTensorWrite();
    return t as Tensor;
  }
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameter by local name (after loadStateDict replaced it, the current one). */
  protected param(name: string): Tensor {
    return this.params.get(name) as Tensor;
  }
  protected buffer(name: string): Tensor {
    return this.buffers.get(name) as Tensor;
  }

  *namedChildren(): Generator<[string, Module]> {
    yield* this.children.entries();
  }
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.children) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, t] of this.params) if (t) yield [prefix ? `${prefix}.${n}` : n, t];
    for (const [n, m] of this.children) yield* m.namedParameters(prefix ? `${prefix}.${n}` : n);
  }
  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, t] of this.buffers) if (t) yield [prefix ? `${prefix}.${n}` : n, t];
    for (const [n, m] of this.children) yield* m.namedBuffers(prefix ? `${prefix}.${n}` : n);
  }
  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  /** Sets the mode of this module and, through their own train(), of its children (an override is honoured below the top too). */
  train(mode = true): this {
    this.training = mode;
    for (const m of this.children.values()) m.train(mode);
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Stops gradients to every parameter (does not change train/eval mode). */
  freeze(): this {
    for (const p of this.parameters()) p.requiresGrad_(false);
    return this;
  }
  unfreeze(): this {
    for (const p of this.parameters()) p.requiresGrad_(true);
    return this;
  }
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = undefined;
  }

  /** Parameters and buffers by dotted key; the tensors are the live ones, not copies. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into the existing tensors. With strict (default), any
   * missing or unexpected key fails; a size mismatch always fails. All
   * problems are reported in one StateDictError, and nothing is copied then.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, { strict = true } = {}): void {
    const incoming = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !incoming.has(k));
    const unexpected = [...incoming.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of own) {
      const src = incoming.get(k);
      if (src && src.shape.join(',') !== t.shape.join(','))
        mismatched.push(`${k}: expected [${t.shape}], got [${src.shape}]`);
    }
    if (mismatched.length || (strict && (missing.length || unexpected.length)))
      throw new StateDictError(strict ? missing : [], strict ? unexpected : [], mismatched);
    noGrad(() => {
      for (const [k, t] of own) {
        const src = incoming.get(k);
        if (src) t.copy_(src.dtype === t.dtype ? src : src.to(t.dtype));
      }
    });
  }

  /** Releases every parameter and buffer (a later use then fails as before: caches look again). */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
    noteTensorWrite();
  }

  /** Channels-last parameters: faster convolutions with oneDNN. */
  toMemoryFormat(format: 'contiguous' | 'channels_last'): this {
    noGrad(() => {
      for (const [, m] of this.namedModules())
        for (const map of [m.params, m.buffers])
          for (const [n, t] of map) {
            if (!t || t.ndim !== 4 || t.isContiguous(format)) continue;
            const c = keep(t.contiguous(format));
            c.requiresGrad_(t.requiresGrad);
            t.dispose();
            map.set(n, c);
            noteTensorWrite();
          }
    });
    return this;
  }
}
