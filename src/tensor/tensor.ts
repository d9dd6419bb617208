// The Tensor class: a thin, typed face over one native handle. Every method
// returns a new tensor (registered in the open tidy scope) unless its name
// ends in `_`, which updates this tensor in place, as in PyTorch.
import { native, type NativeHandle } from './native';
import { forget, keep, track } from './scope';
import { TorchError } from './errors';
import { noteTensorWrite } from './versions';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
export type Operand = Tensor | number | boolean;
export type MemoryFormat = 'contiguous' | 'channels_last';

const h = (x: Operand): unknown => (x instanceof Tensor ? x.handle : x);
const wrap = (handle: NativeHandle): Tensor => new Tensor(handle);
const wrapAll = (hs: NativeHandle[]): Tensor[] => hs.map(wrap);

export class Tensor {
  readonly isTensor = true;
  /** @internal Registered with scope.ts's garbage-collection backstop (no scope owns it). */
  guarded = false;
  private shapeCache?: number[];
  private dtypeCache?: DType;
  /** dispose() has run: a scope freeing its tensors skips this one without a native call. */
  private disposed = false;

  constructor(readonly handle: NativeHandle) {
    track(this);
  }

  // ---- metadata ----
  get shape(): number[] {
    return (this.shapeCache ??= native.shape(this.handle));
  }
  get dtype(): DType {
    return (this.dtypeCache ??= native.dtype(this.handle)); // a handle's dtype, like its shape, never changes
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get strides(): number[] {
    return native.strides(this.handle);
  }
  /** libtorch's version counter: bumped by every in-place update (for caches of derived tensors). */
  get version(): number {
    return native.version(this.handle);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this.handle);
  }
  isContiguous(format: MemoryFormat = 'contiguous'): boolean {
    return native.isContiguous(this.handle, format);
  }
  dispose(): void {
    if (this.disposed) return; // freeing twice is harmless natively; skipping it saves a call
    this.disposed = true;
    this.shapeCache = this.dtypeCache = undefined; // a disposed tensor has neither: the next read throws E_DISPOSED
    native.dispose(this.handle);
    forget(this);
  }
  keep(): this {
    return keep(this);
  }
  toString(): string {
    return this.isDisposed ? 'Tensor(<disposed>)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype})`;
  }

  // ---- data out ----
  data(): TypedArray {
    return native.toArray(this.handle);
  }
  /** Values as plain numbers (int64 converted, exactly up to 2^53). */
  toNumbers(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d as ArrayLike<number>);
  }
  item(): number {
    return native.item(this.handle);
  }

  // ---- elementwise ----
  add(o: Operand, alpha?: number): Tensor { return wrap(native.add(this.handle, h(o), alpha)); }
  sub(o: Operand, alpha?: number): Tensor { return wrap(native.sub(this.handle, h(o), alpha)); }
  mul(o: Operand): Tensor { return wrap(native.mul(this.handle, h(o))); }
  div(o: Operand): Tensor { return wrap(native.div(this.handle, h(o))); }
  pow(o: Operand): Tensor { return wrap(native.pow(this.handle, h(o))); }
  remainder(o: Operand): Tensor { return wrap(native.remainder(this.handle, h(o))); }
  maximum(o: Tensor): Tensor { return wrap(native.maximum(this.handle, h(o))); }
  minimum(o: Tensor): Tensor { return wrap(native.minimum(this.handle, h(o))); }
  eq(o: Operand): Tensor { return wrap(native.eq(this.handle, h(o))); }
  ne(o: Operand): Tensor { return wrap(native.ne(this.handle, h(o))); }
  lt(o: Operand): Tensor { return wrap(native.lt(this.handle, h(o))); }
  le(o: Operand): Tensor { return wrap(native.le(this.handle, h(o))); }
  gt(o: Operand): Tensor { return wrap(native.gt(this.handle, h(o))); }
  ge(o: Operand): Tensor { return wrap(native.ge(this.handle, h(o))); }
  logicalAnd(o: Tensor): Tensor { return wrap(native.logicalAnd(this.handle, h(o))); }
  logicalOr(o: Tensor): Tensor { return wrap(native.logicalOr(this.handle, h(o))); }
  logicalNot(): Tensor { return wrap(native.logicalNot(this.handle)); }
  neg(): Tensor { return wrap(native.neg(this.handle)); }
  exp(): Tensor { return wrap(native.exp(this.handle)); }
  log(): Tensor { return wrap(native.log(this.handle)); }
  log1p(): Tensor { return wrap(native.log1p(this.handle)); }
  sqrt(): Tensor { return wrap(native.sqrt(this.handle)); }
  rsqrt(): Tensor { return wrap(native.rsqrt(this.handle)); }
  abs(): Tensor { return wrap(native.abs(this.handle)); }
  sign(): Tensor { return wrap(native.sign(this.handle)); }
  floor(): Tensor { return wrap(native.floor(this.handle)); }
  ceil(): Tensor { return wrap(native.ceil(this.handle)); }
  round(): Tensor { return wrap(native.round(this.handle)); }
  reciprocal(): Tensor { return wrap(native.reciprocal(this.handle)); }
  square(): Tensor { return wrap(native.square(this.handle)); }
  sigmoid(): Tensor { return wrap(native.sigmoid(this.handle)); }
  tanh(): Tensor { return wrap(native.tanh(this.handle)); }
  relu(): Tensor { return wrap(native.relu(this.handle)); }
  relu_(): this { native.clampMin_(this.handle, 0); noteTensorWrite(); return this; }
  isnan(): Tensor { return wrap(native.isnan(this.handle)); }
  isfinite(): Tensor { return wrap(native.isfinite(this.handle)); }
  clamp(min?: number | null, max?: number | null): Tensor { return wrap(native.clamp(this.handle, min ?? null, max ?? null)); }
  maskedFill(mask: Tensor, value: number): Tensor { return wrap(native.maskedFill(this.handle, mask.handle, value)); }
  /** this + weight * (end - this); weight a number or a tensor that broadcasts. */
  lerp(end: Tensor, weight: number | Tensor): Tensor { return wrap(native.lerp(this.handle, end.handle, h(weight))); }
  to(dtype: DType): Tensor { return wrap(native.cast(this.handle, dtype)); }
  float(): Tensor { return this.to('float32'); }
  long(): Tensor { return this.to('int64'); }

  // ---- in place (optimizers, initialisation) ----
  add_(o: Operand, alpha?: number): this { native.add_(this.handle, h(o), alpha); noteTensorWrite(); return this; }
  mul_(o: Operand): this { native.mul_(this.handle, h(o)); noteTensorWrite(); return this; }
  div_(o: Operand): this { native.div_(this.handle, h(o)); noteTensorWrite(); return this; }
  addcmul_(a: Tensor, b: Tensor, value = 1): this { native.addcmul_(this.handle, a.handle, b.handle, value); noteTensorWrite(); return this; }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this { native.addcdiv_(this.handle, a.handle, b.handle, value); noteTensorWrite(); return this; }
  lerp_(end: Tensor, weight: number): this { native.lerp_(this.handle, end.handle, weight); noteTensorWrite(); return this; }
  copy_(src: Tensor): this { native.copy_(this.handle, src.handle); noteTensorWrite(); return this; }
  zero_(): this { native.zero_(this.handle); noteTensorWrite(); return this; }
  fill_(v: number): this { native.fill_(this.handle, v); noteTensorWrite(); return this; }
  uniform_(low = 0, high = 1): this { native.uniform_(this.handle, low, high); noteTensorWrite(); return this; }
  normal_(mean = 0, std = 1): this { native.normal_(this.handle, mean, std); noteTensorWrite(); return this; }

  // ---- reductions (dims omitted = all) ----
  sum(dims?: number | number[], keepdim = false): Tensor { return wrap(native.sum(this.handle, dims ?? null, keepdim)); }
  mean(dims?: number | number[], keepdim = false): Tensor { return wrap(native.mean(this.handle, dims ?? null, keepdim)); }
  prod(dim?: number, keepdim = false): Tensor { return wrap(native.prod(this.handle, dim ?? null, keepdim)); }
  max(): Tensor { return wrap(native.maxAll(this.handle)); }
  min(): Tensor { return wrap(native.minAll(this.handle)); }
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapAll(native.maxDim(this.handle, dim, keepdim));
    return { values, indices };
  }
  minDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapAll(native.minDim(this.handle, dim, keepdim));
    return { values, indices };
  }
  argmax(dim?: number, keepdim = false): Tensor { return wrap(native.argmax(this.handle, dim ?? null, keepdim)); }
  argmin(dim?: number, keepdim = false): Tensor { return wrap(native.argmin(this.handle, dim ?? null, keepdim)); }
  var(dims?: number | number[], unbiased = true, keepdim = false): Tensor { return wrap(native.var(this.handle, dims ?? null, unbiased, keepdim)); }
  std(dims?: number | number[], unbiased = true, keepdim = false): Tensor { return wrap(native.std(this.handle, dims ?? null, unbiased, keepdim)); }
  logsumexp(dims: number | number[], keepdim = false): Tensor { return wrap(native.logsumexp(this.handle, dims, keepdim)); }
  norm(p = 2): Tensor { return wrap(native.norm(this.handle, p)); }
  cumsum(dim: number): Tensor { return wrap(native.cumsum(this.handle, dim)); }
  cummax(dim: number): Tensor { return wrap(native.cummax(this.handle, dim)); }
  all(): Tensor { return wrap(native.all(this.handle)); }
  any(): Tensor { return wrap(native.any(this.handle)); }
  topk(k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapAll(native.topk(this.handle, k, dim, largest));
    return { values, indices };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapAll(native.sort(this.handle, dim, descending));
    return { values, indices };
  }

  // ---- shape and indexing ----
  view(...shape: number[]): Tensor { return wrap(native.view(this.handle, shape)); }
  reshape(...shape: number[]): Tensor { return wrap(native.reshape(this.handle, shape)); }
  permute(...dims: number[]): Tensor { return wrap(native.permute(this.handle, dims)); }
  transpose(d0: number, d1: number): Tensor { return wrap(native.transpose(this.handle, d0, d1)); }
  flatten(start = 0, end = -1): Tensor { return wrap(native.flatten(this.handle, start, end)); }
  squeeze(dim?: number): Tensor { return wrap(native.squeeze(this.handle, dim ?? null)); }
  unsqueeze(dim: number): Tensor { return wrap(native.unsqueeze(this.handle, dim)); }
  expand(...shape: number[]): Tensor { return wrap(native.expand(this.handle, shape)); }
  repeat(...times: number[]): Tensor { return wrap(native.repeat(this.handle, times)); }
  flip(dims: number[]): Tensor { return wrap(native.flip(this.handle, dims)); }
  narrow(dim: number, start: number, length: number): Tensor { return wrap(native.narrow(this.handle, dim, start, length)); }
  select(dim: number, index: number): Tensor { return wrap(native.select(this.handle, dim, index)); }
  indexSelect(dim: number, index: Tensor): Tensor { return wrap(native.indexSelect(this.handle, dim, index.handle)); }
  /**
   * Rows `index` (int32 or int64) along dim 0, in this tensor's memory format
   * (indexSelect makes channels-last contiguous); with relu, relu() of them in
   * the same pass. With inPlace the caller gives this tensor up: where every
   * index[j] is j or at least index.length (the exit books' order), only
   * those rows move, within this tensor's memory, and the answer is a view of
   * its first rows; any other index is copied.
   */
  takeRows(index: Tensor, o: { relu?: boolean; inPlace?: boolean } = {}): Tensor {
    if (o.inPlace && o.relu) throw new RangeError('takeRows: relu and inPlace together are not supported (the rows that stay in place would keep their values)');
    return wrap(o.inPlace ? native.takeRowsInPlace(this.handle, index.handle) : native.takeRows(this.handle, index.handle, o.relu ?? false));
  }
  gather(dim: number, index: Tensor): Tensor { return wrap(native.gather(this.handle, dim, index.handle)); }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor { return wrap(native.scatter(this.handle, dim, index.handle, src.handle)); }
  maskedSelect(mask: Tensor): Tensor { return wrap(native.maskedSelect(this.handle, mask.handle)); }
  nonzero(): Tensor { return wrap(native.nonzero(this.handle)); }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] { return wrapAll(native.split(this.handle, sizeOrSizes, dim)); }
  chunk(chunks: number, dim = 0): Tensor[] { return wrapAll(native.chunk(this.handle, chunks, dim)); }
  /** Constant padding; `pads` lists the last dimension first, as PyTorch's F.pad. */
  pad(pads: number[], value = 0): Tensor { return wrap(native.pad(this.handle, pads, value)); }
  clone(): Tensor { return wrap(native.clone(this.handle)); }
  contiguous(format: MemoryFormat = 'contiguous'): Tensor { return wrap(native.contiguous(this.handle, format)); }
  matmul(o: Tensor): Tensor { return wrap(native.matmul(this.handle, h(o))); }
  softmax(dim: number): Tensor { return wrap(native.softmax(this.handle, dim)); }
  logSoftmax(dim: number): Tensor { return wrap(native.logSoftmax(this.handle, dim)); }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  requiresGrad_(flag = true): this {
    native.setRequiresGrad(this.handle, flag);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient, as a new handle on the same storage (or undefined). */
  get grad(): Tensor | undefined {
    const g = native.grad(this.handle);
    return g ? wrap(g) : undefined;
  }
  set grad(g: Tensor | undefined) {
    if (g && (g.shape.join(',') !== this.shape.join(',') || g.dtype !== this.dtype)) {
      const e = new TorchError(`ztw.setGrad: a gradient of shape [${g.shape}] ${g.dtype} for a tensor of shape [${this.shape}] ${this.dtype}`);
      e.code = 'E_ARG';
      e.op = 'setGrad';
      throw e;
    }
    native.setGrad(this.handle, g?.handle);
  }
  backward(gradient?: Tensor, retainGraph = false): void {
    native.backward(this.handle, gradient?.handle, retainGraph);
  }
  detach(): Tensor { return wrap(native.detach(this.handle)); }
}

export { wrap as wrapHandle, wrapAll as wrapHandles };
