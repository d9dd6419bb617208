// Exit policies: an argument of every inference call, never hidden state.
export type ExitPolicy =
  /** Leave at the first exit whose (ensemble) max-probability is > tau. */
  | { kind: 'confidence'; tau: number }
  /** PBEE: leave once `patience` consecutive exits agree on the argmax. */
  | { kind: 'patience'; patience: number };

export function validatePolicy(p: ExitPolicy, numExits: number): void {
  if (p.kind === 'confidence') {
    if (typeof p.tau !== 'number' || Number.isNaN(p.tau) || p.tau < 0) throw new RangeError(`exit policy: tau must be a number >= 0 (tau > 1 never exits early), got ${p.tau}`);
  } else if (p.kind === 'patience') {
    if (!Number.isInteger(p.patience) || p.patience < 1) throw new RangeError(`exit policy: patience must be an integer >= 1, got ${p.patience}`);
    if (p.patience > numExits) throw new RangeError(`exit policy: patience ${p.patience} exceeds the ${numExits} exits`);
  } else {
    throw new TypeError(`exit policy: unknown kind '${(p as { kind: string }).kind}' (confidence or patience)`);
  }
}
