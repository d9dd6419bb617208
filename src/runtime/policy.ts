// Exit policies: an argument of every inference call, never hidden state.
export type ExitPolicy =
  /** Leave at the first exit whose (ensemble) max-probability is > tau. */
  | { kind: 'confidence'; tau: number }
  /** PBEE: leave once `patience` consecutive exits agree on the argmax. */
  | { kind: 'patience'; patience: number };

// One rule set for both runtimes: the check lives in onnx-core.ts because
// the browser loads that file on its own.
export { checkPolicy as validatePolicy } from './onnx-core';
