/**
 * Every failure inside the native engine surfaces as a TorchError: `op` names
 * the entry, `shapes` the tensor arguments, and `code` the kind:
 * E_TORCH (libtorch refused), E_ARG (wrong argument), E_DISPOSED (a disposed
 * tensor was used), E_NATIVE (another C++ exception).
 */
export class TorchError extends Error {
  op = '';
  code: 'E_TORCH' | 'E_ARG' | 'E_DISPOSED' | 'E_NATIVE' = 'E_NATIVE';
  shapes = '';
  constructor(message: string) {
    super(message);
    this.name = 'TorchError';
  }
}
