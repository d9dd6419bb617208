// Every failure at the native boundary surfaces as a typed TorchError (never a
// crash): its code, the op that failed, and the shapes of the tensor inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  tensor, zeros, ones, randn, randint, cat, stack, tidy, dispose, liveTensors, TorchError, Tensor, type DType,
} from '../../src/tensor';
import { native } from '../../src/tensor/native';
import * as nn from '../../src/nn';
import { F, StateDictError } from '../../src/nn';
import { saveSafetensors, loadSafetensors, decodeSafetensors, SafetensorsError } from '../../src/io';

type Code = TorchError['code'];
interface Want { code: Code; op: string; message: RegExp; shapes?: string }

/** Runs fn, which must throw a TorchError as described; returns it. */
function expectTorchError(fn: () => unknown, want: Want): TorchError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${want.op}: expected a throw`);
  assert.ok(caught instanceof TorchError, `${want.op}: expected a TorchError, got ${(caught as Error)?.constructor?.name}: ${(caught as Error)?.message}`);
  assert.ok(caught instanceof Error);
  const e = caught as TorchError;
  assert.equal(e.name, 'TorchError');
  assert.equal(e.op, want.op, `op of: ${e.message}`);
  assert.equal(e.code, want.code, `code of: ${e.message}`);
  assert.ok(e.message.startsWith(`ztw.${want.op}: `), `message names the op: ${e.message}`);
  assert.match(e.message, want.message);
  if (want.shapes !== undefined) {
    assert.equal(e.shapes, want.shapes);
    if (want.shapes) assert.ok(e.message.endsWith(`(inputs: ${want.shapes})`), `message lists the inputs: ${e.message}`);
  }
  assert.match(e.stack ?? '', /TorchError/);
  return e;
}

// ---- shapes ----

test('shape errors name the op and both shapes', () => {
  expectTorchError(() => randn([2, 3]).matmul(randn([4, 5])), {
    code: 'E_TORCH', op: 'matmul', message: /cannot be multiplied \(2x3 and 4x5\)/, shapes: '[2, 3] float32, [4, 5] float32',
  });
  expectTorchError(() => F.conv2d(randn([1, 3, 8, 8]), randn([4, 2, 3, 3])), {
    code: 'E_TORCH', op: 'conv2d', message: /weight of size \[4, 2, 3, 3\], expected input\[1, 3, 8, 8\] to have 2 channels, but got 3 channels/,
    shapes: '[1, 3, 8, 8] float32, [4, 2, 3, 3] float32',
  });
  // Grouped conv: 4 input channels in 2 groups need weight [out, 2, k, k].
  expectTorchError(() => F.conv2d(randn([1, 4, 5, 5]), randn([4, 4, 3, 3]), undefined, { groups: 2 }), {
    code: 'E_TORCH', op: 'conv2d', message: /groups=2/, shapes: '[1, 4, 5, 5] float32, [4, 4, 3, 3] float32',
  });
  expectTorchError(() => F.conv2d(randn([1, 3, 2, 2]), randn([4, 3, 3, 3])), {
    code: 'E_TORCH', op: 'conv2d', message: /Kernel size can't be greater than actual input size/,
  });
  expectTorchError(() => F.linear(randn([4, 3]), randn([5, 4]), randn([5])), {
    code: 'E_TORCH', op: 'linear', message: /4x3 and 4x5/, shapes: '[4, 3] float32, [5, 4] float32, [5] float32',
  });
  expectTorchError(() => randn([2, 3]).add(randn([4])), {
    code: 'E_TORCH', op: 'add', message: /size of tensor a \(3\) must match the size of tensor b \(4\)/, shapes: '[2, 3] float32, [4] float32',
  });
  expectTorchError(() => F.batchNorm(randn([4, 3, 2, 2]), { runningMean: zeros([5]), runningVar: ones([5]), training: false }), {
    code: 'E_TORCH', op: 'batchNorm', message: /running_mean should contain 3 elements not 5/, shapes: '[4, 3, 2, 2] float32, [5] float32, [5] float32',
  });
  expectTorchError(() => F.maxPool2d(randn([1, 1, 2, 2]), 3), { code: 'E_TORCH', op: 'maxPool2d', message: /Output size is too small/ });
  expectTorchError(() => cat([randn([2, 3]), randn([3, 2])]), { code: 'E_TORCH', op: 'cat', message: /Expected size 3 but got size 2/ });
  expectTorchError(() => stack([randn([2]), randn([3])]), { code: 'E_TORCH', op: 'stack', message: /stack expects each tensor to be equal size/ });
});

test('view and reshape to a wrong size', () => {
  // libtorch 1.13 reports a wrong element count as std::runtime_error (not c10::Error).
  expectTorchError(() => randn([2, 3]).view(4, 2), {
    code: 'E_TORCH', op: 'view', message: /shape '\[4, 2\]' is invalid for input of size 6/, shapes: '[2, 3] float32',
  });
  expectTorchError(() => randn([2, 3]).view(-1, 4), { code: 'E_TORCH', op: 'view', message: /shape '\[-1, 4\]' is invalid for input of size 6/ });
  expectTorchError(() => randn([2, 3]).reshape(7), { code: 'E_TORCH', op: 'reshape', message: /shape '\[7\]' is invalid for input of size 6/ });
  expectTorchError(() => randn([2, 3]).view(-1, -1), { code: 'E_TORCH', op: 'view', message: /only one dimension can be inferred/ });
  // A view across non-contiguous strides is refused by libtorch proper.
  expectTorchError(() => randn([2, 3]).transpose(0, 1).view(6), {
    code: 'E_TORCH', op: 'view', message: /view size is not compatible with input tensor's size and stride/, shapes: '[3, 2] float32',
  });
  expectTorchError(() => randn([2, 3]).expand(4, 3), { code: 'E_TORCH', op: 'expand', message: /expanded size of the tensor \(4\) must match the existing size \(2\)/ });
  expectTorchError(() => randn([2, 3]).narrow(0, 1, 5), { code: 'E_TORCH', op: 'narrow', message: /start \(1\) \+ length \(5\) exceeds dimension size \(2\)/ });
  expectTorchError(() => randn([2, 3]).select(0, 5), { code: 'E_TORCH', op: 'select', message: /index 5 out of range/ });
  expectTorchError(() => randn([2, 3]).softmax(2), { code: 'E_TORCH', op: 'softmax', message: /Dimension out of range/ });
});

// ---- dtypes ----

test('wrong dtypes: float targets and float indices', () => {
  const logits = randn([4, 3]);
  expectTorchError(() => F.crossEntropy(logits, tensor([0, 1, 2, 0])), {
    code: 'E_TORCH', op: 'crossEntropy', message: /expected scalar type Long but found Float/, shapes: '[4, 3] float32, [4] float32',
  });
  expectTorchError(() => F.nllLoss(logits.logSoftmax(1), tensor([0, 1, 2, 0])), {
    code: 'E_TORCH', op: 'nllLoss', message: /expected scalar type Long but found Float/, shapes: '[4, 3] float32, [4] float32',
  });
  expectTorchError(() => randn([4, 3]).indexSelect(0, tensor([0, 1])), {
    code: 'E_TORCH', op: 'indexSelect', message: /Expected dtype int32 or int64 for index/, shapes: '[4, 3] float32, [2] float32',
  });
  expectTorchError(() => randn([4, 3]).gather(1, tensor([[0], [1], [2], [0]])), {
    code: 'E_TORCH', op: 'gather', message: /Expected dtype int64 for index/, shapes: '[4, 3] float32, [4, 1] float32',
  });
  expectTorchError(() => F.crossEntropy(logits, tensor([0, 1, 5, 0], undefined, 'int64')), {
    code: 'E_TORCH', op: 'crossEntropy', message: /Target 5 is out of bounds/, shapes: '[4, 3] float32, [4] int64',
  });
  expectTorchError(() => randn([2, 2]).matmul(randn([2, 2], 'float64')), { code: 'E_TORCH', op: 'matmul', message: /float|Double|dtype/i, shapes: '[2, 2] float32, [2, 2] float64' });
  // Only floating-point tensors can require gradients.
  expectTorchError(() => randint(0, 3, [3]).requiresGrad_(), { code: 'E_TORCH', op: 'setRequiresGrad', message: /floating point/, shapes: '[3] int64' });
});

test('unknown dtype names', () => {
  expectTorchError(() => zeros([2], 'float16' as DType), {
    code: 'E_ARG', op: 'zeros', message: /unknown dtype 'float16' \(expected float32, float64, int64, int32, uint8 or bool\)/, shapes: '',
  });
  expectTorchError(() => randn([2]).to('half' as DType), { code: 'E_ARG', op: 'cast', message: /unknown dtype 'half'/, shapes: '[2] float32' });
  expectTorchError(() => randn([2], 'complex64' as DType), { code: 'E_ARG', op: 'randn', message: /unknown dtype 'complex64'/ });
  // From JS data the dtype is checked before any conversion.
  expectTorchError(() => tensor([1, 2], undefined, 'float16' as DType), { code: 'E_ARG', op: 'fromArray', message: /unknown dtype 'float16'/ });
  expectTorchError(() => tensor(new Float32Array(2), undefined, 'float16' as DType), { code: 'E_ARG', op: 'fromArray', message: /unknown dtype 'float16'/ });
});

// ---- disposed tensors ----

test('disposed tensors: idempotent dispose, E_DISPOSED on use', () => {
  const before = liveTensors();
  const t = randn([2, 3]);
  const u = randn([2, 3]);
  assert.equal(liveTensors(), before + 2);
  assert.equal(t.dtype, 'float32'); // read (and kept by the wrapper) before the dispose
  assert.deepEqual(t.shape, [2, 3]);
  t.dispose();
  expectTorchError(() => t.dtype, { code: 'E_DISPOSED', op: 'dtype', message: /was disposed/ });
  expectTorchError(() => t.shape, { code: 'E_DISPOSED', op: 'shape', message: /was disposed/ });
  assert.equal(t.isDisposed, true);
  assert.equal(liveTensors(), before + 1);
  t.dispose(); // idempotent: no throw, no double count
  native.dispose(t.handle);
  assert.equal(liveTensors(), before + 1);
  // The freed slot is reused by the next tensor; the old id must not reach it.
  const reuse = randn([4]);
  assert.equal(t.isDisposed, true, 'a disposed id stays disposed when its slot is reused');
  assert.equal(reuse.isDisposed, false);
  expectTorchError(() => t.add(reuse), { code: 'E_DISPOSED', op: 'add', message: /argument 0: tensor was disposed/ });
  reuse.dispose();
  // Ids are the table's: a forged one is a disposed tensor, anything else is no tensor.
  expectTorchError(() => native.add(12345n, 1), { code: 'E_DISPOSED', op: 'add', message: /argument 0: tensor was disposed/ });
  expectTorchError(() => native.add({}, 1), { code: 'E_ARG', op: 'add', message: /argument 0: expected a tensor/ });
  expectTorchError(() => native.dispose('x'), { code: 'E_ARG', op: 'dispose', message: /expected a tensor/ });
  // versionsMatch: a cache's check of its sources' versions.
  const v = Float64Array.from(native.versions([u.handle]) as number[]);
  assert.equal(native.versionsMatch([u.handle], v), true);
  u.add_(1);
  assert.equal(native.versionsMatch([u.handle], v), false, 'an in-place update moves the version');
  expectTorchError(() => native.versionsMatch([u.handle], [0]), { code: 'E_ARG', op: 'versionsMatch', message: /expected a Float64Array/ });
  expectTorchError(() => native.versionsMatch([u.handle, u.handle], v), { code: 'E_ARG', op: 'versionsMatch', message: /1 versions for 2 tensors/ });
  expectTorchError(() => native.versionsMatch([t.handle], v), { code: 'E_DISPOSED', op: 'versionsMatch', message: /was disposed/ });
  assert.equal(liveTensors(), before + 1);
  assert.equal(t.toString(), 'Tensor(<disposed>)');

  expectTorchError(() => t.add(1), { code: 'E_DISPOSED', op: 'add', message: /argument 0: tensor was disposed/, shapes: '<disposed>' });
  expectTorchError(() => u.add(t), { code: 'E_DISPOSED', op: 'add', message: /argument 1: tensor was disposed/, shapes: '[2, 3] float32, <disposed>' });
  expectTorchError(() => t.data(), { code: 'E_DISPOSED', op: 'toArray', message: /tensor was disposed/ });
  expectTorchError(() => t.item(), { code: 'E_DISPOSED', op: 'item', message: /tensor was disposed/ });
  expectTorchError(() => t.dtype, { code: 'E_DISPOSED', op: 'dtype', message: /tensor was disposed/ });
  expectTorchError(() => t.requiresGrad_(), { code: 'E_DISPOSED', op: 'setRequiresGrad', message: /tensor was disposed/ });
  expectTorchError(() => u.copy_(t), { code: 'E_DISPOSED', op: 'copy_', message: /argument 1: tensor was disposed/ });
  expectTorchError(() => cat([u, t]), { code: 'E_DISPOSED', op: 'cat', message: /argument 0: element 1 was disposed/ });
  expectTorchError(() => F.linear(u, t), { code: 'E_DISPOSED', op: 'linear', message: /argument 1: tensor was disposed/ });
  const fresh = randn([4]);
  fresh.dispose();
  expectTorchError(() => fresh.shape, { code: 'E_DISPOSED', op: 'shape', message: /tensor was disposed/ });
  // Even once its shape was read (and cached) before dispose().
  const seen = randn([5]);
  assert.deepEqual(seen.shape, [5]);
  seen.dispose();
  expectTorchError(() => seen.shape, { code: 'E_DISPOSED', op: 'shape', message: /tensor was disposed/ });
  // The survivor is unharmed.
  assert.deepEqual(u.shape, [2, 3]);
  // dispose() of containers tolerates already-disposed and repeated tensors.
  dispose([u, t, { again: u }]);
  assert.equal(u.isDisposed, true);
  assert.equal(liveTensors(), before);
});

test('setting .grad checks shape and dtype against the tensor', () => {
  tidy(() => {
    const p = randn([2, 3]).requiresGrad_();
    expectTorchError(() => (p.grad = zeros([3, 2])), { code: 'E_ARG', op: 'setGrad', message: /shape \[3,2\] float32 for a tensor of shape \[2,3\] float32/ });
    expectTorchError(() => (p.grad = zeros([2, 3], 'float64')), { code: 'E_ARG', op: 'setGrad', message: /float64/ });
    assert.equal(p.grad, undefined, 'nothing was set');
    p.grad = ones([2, 3]);
    assert.deepEqual(p.grad?.toNumbers(), [1, 1, 1, 1, 1, 1]);
    p.grad = undefined;
    assert.equal(p.grad, undefined);
  });
});

// ---- wrong argument types ----

test('wrong argument types: non-tensors, strings for numbers, non-integer shapes', () => {
  const x = randn([2, 3]);
  // Where an operand may be a number, anything else must be a tensor.
  expectTorchError(() => x.add('1' as unknown as number), { code: 'E_ARG', op: 'add', message: /argument 1: expected a tensor/, shapes: '[2, 3] float32' });
  expectTorchError(() => x.mul({} as unknown as Tensor), { code: 'E_ARG', op: 'mul', message: /argument 1: expected a tensor/ });
  // Tensor-only operands given a number say so (they used to report the tensor as missing).
  expectTorchError(() => x.matmul(3 as unknown as Tensor), { code: 'E_ARG', op: 'matmul', message: /argument 1: expected a tensor/ });
  expectTorchError(() => x.maximum(0 as unknown as Tensor), { code: 'E_ARG', op: 'maximum', message: /argument 1: expected a tensor/ });
  // A look-alike object is not a tensor handle.
  expectTorchError(() => x.add({ handle: {} } as unknown as Tensor), { code: 'E_ARG', op: 'add', message: /argument 1: expected a tensor/ });
  expectTorchError(() => x.add({ isTensor: true, handle: { dispose() {}, isDisposed: () => false } } as unknown as Tensor), {
    code: 'E_ARG', op: 'add', message: /argument 1: expected a tensor/,
  });
  // Tensor-only parameters given a number, string or plain object.
  for (const bad of [3, 'x', {}]) {
    expectTorchError(() => x.matmul(bad as unknown as Tensor), { code: 'E_ARG', op: 'matmul', message: /argument 1: (missing, )?expected a tensor/, shapes: '[2, 3] float32' });
    expectTorchError(() => native.matmul(x.handle, bad), { code: 'E_ARG', op: 'matmul', message: /argument 1: expected a tensor/ });
    expectTorchError(() => native.relu(bad), { code: 'E_ARG', op: 'relu', message: /argument 0: expected a tensor/, shapes: '' });
  }
  expectTorchError(() => native.relu(), { code: 'E_ARG', op: 'relu', message: /argument 0: missing, expected a tensor/ });
  expectTorchError(() => cat([x, 3 as unknown as Tensor]), { code: 'E_ARG', op: 'cat', message: /argument 0: element 1 is not a tensor/ });
  expectTorchError(() => native.cat(x.handle, 0), { code: 'E_ARG', op: 'cat', message: /argument 0: expected a tensor list/ });
  // Strings where numbers or booleans belong.
  expectTorchError(() => x.narrow(0, '1' as unknown as number, 1), { code: 'E_ARG', op: 'narrow', message: /argument 2: expected a number/, shapes: '[2, 3] float32' });
  expectTorchError(() => x.softmax('1' as unknown as number), { code: 'E_ARG', op: 'softmax', message: /argument 1: expected a number/ });
  expectTorchError(() => F.dropout(x, 'half' as unknown as number, true), { code: 'E_ARG', op: 'dropout', message: /argument 1: expected a number/ });
  expectTorchError(() => F.dropout(x, 0.5, 'yes' as unknown as boolean), { code: 'E_ARG', op: 'dropout', message: /argument 2: expected a boolean/ });
  expectTorchError(() => x.fill_('3' as unknown as number), { code: 'E_ARG', op: 'fill_', message: /argument 1: expected a number/ });
  expectTorchError(() => F.crossEntropy(x, tensor([0, 1], undefined, 'int64'), { reduction: 'avg' as 'mean' }), {
    code: 'E_ARG', op: 'crossEntropy', message: /reduction must be 'mean', 'sum' or 'none', got 'avg'/,
  });
  // Non-integer sizes and dims.
  expectTorchError(() => zeros([2.5, 2]), { code: 'E_ARG', op: 'zeros', message: /argument 0: element 0 is not an integer/, shapes: '' });
  expectTorchError(() => zeros([2, '3' as unknown as number]), { code: 'E_ARG', op: 'zeros', message: /argument 0: element 1 is not a number/ });
  expectTorchError(() => zeros('abc' as unknown as number[]), { code: 'E_ARG', op: 'zeros', message: /argument 0: expected an integer list/ });
  expectTorchError(() => x.view(3, 2.5), { code: 'E_ARG', op: 'view', message: /argument 1: element 1 is not an integer/ });
  expectTorchError(() => x.transpose(0.5, 1), { code: 'E_ARG', op: 'transpose', message: /argument 1: expected an integer, got 0\.5/ });
  expectTorchError(() => F.conv2d(randn([1, 1, 4, 4]), randn([1, 1, 3, 3]), undefined, { stride: 1.5 }), {
    code: 'E_ARG', op: 'conv2d', message: /argument 3: element 0 is not an integer/,
  });
  expectTorchError(() => x.clamp(), { code: 'E_ARG', op: 'clamp', message: /clamp needs a min or a max/ });
  // Argument errors on libtorch's side of the checks.
  expectTorchError(() => F.dropout(x, 1.5, true), { code: 'E_TORCH', op: 'dropout', message: /dropout probability has to be between 0 and 1, but got 1.5/ });
  expectTorchError(() => zeros([-1]), { code: 'E_TORCH', op: 'zeros', message: /negative dimension -1/ });
  expectTorchError(() => randn([2]).backward(), { code: 'E_TORCH', op: 'backward', message: /does not require grad/, shapes: '[2] float32' });
});

// ---- typed arrays ----

test('fromArray: byte-length mismatch and non-typed input', () => {
  expectTorchError(() => tensor(new Float32Array(5), [2, 3]), {
    code: 'E_ARG', op: 'fromArray', message: /typed array holds 20 bytes, shape \[2, 3\] of float32 needs 24/, shapes: '',
  });
  expectTorchError(() => tensor(new BigInt64Array(3), [2, 2]), { code: 'E_ARG', op: 'fromArray', message: /holds 24 bytes, shape \[2, 2\] of int64 needs 32/ });
  expectTorchError(() => tensor([1, 2, 3], [2, 2]), { code: 'E_ARG', op: 'fromArray', message: /holds 12 bytes, shape \[2, 2\] of float32 needs 16/ });
  expectTorchError(() => native.fromArray([1, 2], [2], 'float32'), { code: 'E_ARG', op: 'fromArray', message: /argument 0: expected a typed array/ });
  // The typed array's bytes are what counts, not its length.
  expectTorchError(() => native.fromArray(new Float64Array(2), [2], 'float32'), { code: 'E_ARG', op: 'fromArray', message: /holds 16 bytes, shape \[2\] of float32 needs 8/ });
});

test('item() needs exactly one element', () => {
  expectTorchError(() => randn([2, 3]).item(), { code: 'E_ARG', op: 'item', message: /one-element tensor, got 6 elements/, shapes: '[2, 3] float32' });
  expectTorchError(() => zeros([0]).item(), { code: 'E_ARG', op: 'item', message: /got 0 elements/ });
  assert.equal(tensor([[[4]]]).item(), 4);
  assert.equal(tensor([7], undefined, 'int64').item(), 7);
});

test('memory formats other than contiguous/channels_last are refused', () => {
  const x = randn([1, 2, 3, 3]);
  expectTorchError(() => x.contiguous('nhwc' as 'channels_last'), {
    code: 'E_ARG', op: 'contiguous', message: /memory format must be 'contiguous' or 'channels_last', got 'nhwc'/, shapes: '[1, 2, 3, 3] float32',
  });
  expectTorchError(() => x.isContiguous('nhwc' as 'channels_last'), {
    code: 'E_ARG', op: 'isContiguous', message: /memory format must be 'contiguous' or 'channels_last', got 'nhwc'/, shapes: '[1, 2, 3, 3] float32',
  });
  const conv = new nn.Conv2d({ inChannels: 2, outChannels: 2, kernelSize: 3 });
  assert.throws(() => conv.toMemoryFormat('nhwc' as 'channels_last'), (e: unknown) => e instanceof TorchError && e.code === 'E_ARG');
  // channels_last on a tensor that is not 4-D is a libtorch error.
  expectTorchError(() => randn([2, 3]).contiguous('channels_last'), { code: 'E_TORCH', op: 'contiguous', message: /rank 4/ });
});

// ---- state dicts ----

test('loadStateDict: one StateDictError lists missing, unexpected and mis-sized keys; nothing is copied', () => {
  const make = (): nn.Sequential => new nn.Sequential(new nn.Linear({ inFeatures: 3, outFeatures: 4 }), new nn.BatchNorm2d({ numFeatures: 4 }));
  const m = make();
  const before = [...m.stateDict()].map(([k, t]) => [k, t.toNumbers()]);
  const src = new Map([...make().stateDict()]);
  src.delete('0.bias');
  src.delete('1.running_var');
  src.set('2.weight', zeros([1]));
  src.set('0.weight', zeros([4, 5]));
  src.set('1.num_batches_tracked', zeros([1], 'int64'));
  let err: unknown;
  try {
    m.loadStateDict(src);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof StateDictError, `got ${err}`);
  assert.equal(err.name, 'StateDictError');
  assert.deepEqual(err.missing, ['0.bias', '1.running_var']);
  assert.deepEqual(err.unexpected, ['2.weight']);
  assert.deepEqual(err.mismatched, ['0.weight: expected [4,3], got [4,5]', '1.num_batches_tracked: expected [], got [1]']);
  assert.equal(
    err.message,
    'loadStateDict: missing keys: 0.bias, 1.running_var | unexpected keys: 2.weight | ' +
      'size mismatch: 0.weight: expected [4,3], got [4,5]; 1.num_batches_tracked: expected [], got [1]',
  );
  // Keys that would have matched (1.weight, 1.bias, 1.running_mean) were not copied either.
  assert.deepEqual([...m.stateDict()].map(([k, t]) => [k, t.toNumbers()]), before);

  // strict=false forgives missing and unexpected keys, never a size mismatch.
  assert.throws(
    () => m.loadStateDict(src, { strict: false }),
    (e: unknown) => e instanceof StateDictError && e.missing.length === 0 && e.unexpected.length === 0 && e.mismatched.length === 2 && !/missing|unexpected/.test(e.message),
  );
  assert.deepEqual([...m.stateDict()].map(([k, t]) => [k, t.toNumbers()]), before);
});

// ---- safetensors ----

test('corrupt safetensors files raise SafetensorsError naming the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztw-err-'));
  try {
    const file = path.join(dir, 'w.safetensors');
    saveSafetensors(file, new Map([['w', randn([4, 4])]]));
    const good = fs.readFileSync(file);
    const corrupt = (name: string, bytes: Buffer, re: RegExp): void => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      assert.throws(() => loadSafetensors(f), (e: unknown) => e instanceof SafetensorsError && e.message.includes(f) && re.test(e.message), name);
    };
    corrupt('short.safetensors', good.subarray(0, 5), /too short \(5 bytes\)/);
    corrupt('cut-header.safetensors', good.subarray(0, 20), /header length \d+ runs past the end of the file \(20 bytes\)/);
    corrupt('cut-data.safetensors', good.subarray(0, good.length - 4), /tensor w: byte range \[0, 64\) does not hold shape \[4,4\] of float32/);
    const badJson = Buffer.from(good);
    badJson[8] = 0x5b; // '{' -> '['
    corrupt('json.safetensors', badJson, /header is not JSON/);
    assert.throws(() => loadSafetensors(path.join(dir, 'absent.safetensors')), (e: unknown) => e instanceof SafetensorsError && /file not found/.test(e.message));
    assert.throws(() => decodeSafetensors(Buffer.alloc(3)), /safetensors <buffer>: too short/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- no leaks and no crash ----

test('failing ops leak no tensors and the engine keeps working', () => {
  const x = randn([2, 3]);
  const before = liveTensors();
  tidy(() => {
    for (let i = 0; i < 50; i++) {
      assert.throws(() => x.matmul(x));
      assert.throws(() => x.view(5));
      assert.throws(() => x.add('a' as unknown as number));
      assert.throws(() => F.crossEntropy(x, tensor([0.5, 1])));
    }
  });
  assert.equal(liveTensors(), before);
  assert.deepEqual(x.matmul(x.transpose(0, 1)).shape, [2, 2]);
});
