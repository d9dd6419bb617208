// The methods compared in the paper, and the ablations, by name: each is a
// choice of heads (independent or cascaded) and of ensemble over them.
import type { EnsembleKind } from './ensemble';
import type { CascadeOptions } from './head';

export type HeadKind = 'sdn' | 'ztw' | 'ztw-no-stop-grad';
export type ExitRuleKind = 'confidence' | 'patience';

export interface MethodSpec {
  name: string;
  /** Which trained set of heads it uses. */
  heads: HeadKind;
  /** Ensemble over the exits, or none (each exit answers alone). */
  ensemble: EnsembleKind | null;
  rule: ExitRuleKind;
  /**
   * What the ensembles are fit on: the heads' outputs over augmented training
   * images (the reference; default), or over every other clean validation
   * image ('heldout'), the other half then choosing held-out thresholds.
   */
  ensembleData?: 'train' | 'heldout';
}

export const HEAD_CASCADE: Record<HeadKind, CascadeOptions> = {
  sdn: { enabled: false },
  ztw: { enabled: true, detach: true },
  'ztw-no-stop-grad': { enabled: true, detach: false },
};

export const METHODS: Record<string, MethodSpec> = {
  sdn: { name: 'SDN', heads: 'sdn', ensemble: null, rule: 'confidence' },
  pbee: { name: 'PBEE', heads: 'sdn', ensemble: null, rule: 'patience' },
  ztw: { name: 'ZTW', heads: 'ztw', ensemble: 'geometric', rule: 'confidence' },
  'cascade-only': { name: 'ZTW cascade only', heads: 'ztw', ensemble: null, rule: 'confidence' },
  'ensemble-only': { name: 'ZTW ensemble only', heads: 'sdn', ensemble: 'geometric', rule: 'confidence' },
  additive: { name: 'ZTW additive ensemble', heads: 'ztw', ensemble: 'additive', rule: 'confidence' },
  'mean-ensemble': { name: 'ZTW mean ensemble', heads: 'ztw', ensemble: 'mean', rule: 'confidence' },
  'no-stop-grad': { name: 'ZTW without stop-gradient', heads: 'ztw-no-stop-grad', ensemble: 'geometric', rule: 'confidence' },
  'ztw-heldout': { name: 'ZTW, ensembles fit on held-out images', heads: 'ztw', ensemble: 'geometric', rule: 'confidence', ensembleData: 'heldout' },
};

export const DEFAULT_METHODS = ['sdn', 'pbee', 'ztw'];
export const ABLATIONS = ['cascade-only', 'ensemble-only', 'additive', 'no-stop-grad'];
/** Not in the paper: ZTW with its ensembles fit on held-out data (see the README's ResNet-56 results). */
export const VARIANTS = ['ztw-heldout'];

export function methodSpec(name: string): MethodSpec {
  const m = METHODS[name];
  if (!m) throw new Error(`unknown method '${name}' (known: ${Object.keys(METHODS).join(', ')})`);
  return m;
}
