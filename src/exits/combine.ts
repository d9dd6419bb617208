// Every exit's ensemble at inference time, in plain JS on the members'
// log-probabilities: with K classes and at most M members a combination is a
// few hundred multiply-adds per sample, far less than the five native calls
// (and their crossings) it replaced. The offline evaluator and the runtimes
// all combine through this one class, so their answers agree to the bit.
//
// Free of runtime imports, like onnx-core.ts, so that a browser can load it.

export type CombineKind = 'geometric' | 'additive' | 'mean';

export interface ExitCombinerSpec {
  kind: CombineKind;
  numClasses: number;
  /** weights[m]: exit m's member weights (m + 1 of them) as used: exp(w) masked, /(m+1) for the geometric mean. */
  weights: ArrayLike<number>[];
  /** bias[m]: exit m's per-class bias (K values; null for the plain mean). */
  bias: (ArrayLike<number> | null)[];
}

export class ExitCombiner {
  readonly numExits: number;
  private readonly w: Float64Array[];
  private readonly b: (Float64Array | null)[];
  private z?: Float64Array;

  constructor(readonly spec: ExitCombinerSpec) {
    const { kind, numClasses: K, weights, bias } = spec;
    if (kind !== 'geometric' && kind !== 'additive' && kind !== 'mean') throw new TypeError(`ExitCombiner: unknown kind '${kind}'`);
    if (!Number.isInteger(K) || K < 1) throw new RangeError(`ExitCombiner: numClasses must be a positive integer, got ${K}`);
    if (weights.length !== bias.length || weights.length < 1) throw new RangeError(`ExitCombiner: ${weights.length} weight rows for ${bias.length} bias rows`);
    this.numExits = weights.length;
    this.w = weights.map((row, m) => {
      if (row.length !== m + 1) throw new RangeError(`ExitCombiner: exit ${m} needs ${m + 1} member weights, got ${row.length}`);
      return Float64Array.from(row);
    });
    this.b = bias.map((row, m) => {
      if (kind === 'mean') return null;
      if (!row || row.length !== K) throw new RangeError(`ExitCombiner: exit ${m} needs ${K} bias values`);
      return Float64Array.from(row);
    });
  }

  /**
   * Exit m's ensemble for n samples. members[j] (j <= m) holds exit j's
   * log-probabilities, [n * K] row-major; or, with rows, sample i's are at
   * row rows[i] of every member (a runtime keeps them by batch position and
   * need not re-pack them when samples leave). Returns log q, [n * K]
   * (float32), in `out` when given (its first n * K values).
   */
  combine(m: number, members: readonly Float32Array[], n: number, rows?: Int32Array, out?: Float32Array): Float32Array {
    const K = this.spec.numClasses;
    if (!(m >= 0 && m < this.numExits)) throw new RangeError(`ExitCombiner: exit ${m} out of range (${this.numExits} exits)`);
    if (members.length < m + 1) throw new RangeError(`ExitCombiner: exit ${m} needs ${m + 1} members, got ${members.length}`);
    checkMemberRows(members, m, n, K, rows);
    const w = this.w[m];
    const b = this.b[m];
    if (out && out.length < n * K) throw new RangeError(`ExitCombiner: output holds ${out.length} values, ${n * K} needed`);
    out ??= new Float32Array(n * K);
    const z = (this.z ??= new Float64Array(K)); // scratch (combine runs to completion; JS has one thread)
    const geometric = this.spec.kind === 'geometric';
    for (let i = 0; i < n; i++) {
      const o = i * K;
      const src = (rows ? rows[i] : i) * K;
      for (let k = 0; k < K; k++) z[k] = geometric ? (b as Float64Array)[k] : b ? Math.exp(b[k]) : 0;
      for (let j = 0; j <= m; j++) {
        const lp = members[j];
        const wj = w[j];
        if (geometric) for (let k = 0; k < K; k++) z[k] += wj * lp[src + k];
        else for (let k = 0; k < K; k++) z[k] += wj * Math.exp(lp[src + k]);
      }
      if (geometric) {
        // log-softmax of z, shifted by the maximum against overflow.
        let mx = -Infinity;
        for (let k = 0; k < K; k++) if (z[k] > mx) mx = z[k];
        let s = 0;
        for (let k = 0; k < K; k++) s += Math.exp(z[k] - mx);
        const lse = mx + Math.log(s);
        for (let k = 0; k < K; k++) out[o + k] = z[k] - lse;
      } else {
        let s = 0;
        for (let k = 0; k < K; k++) s += z[k];
        for (let k = 0; k < K; k++) out[o + k] = Math.log(z[k] / s);
      }
    }
    return out;
  }

  /** Every exit's ensemble over [N, M, K] log-probabilities (the cached layout); the same layout back. */
  combineAll(logProbs: Float32Array, numSamples: number): Float32Array {
    const K = this.spec.numClasses;
    const M = this.numExits;
    const N = numSamples;
    if (logProbs.length !== N * M * K) throw new RangeError(`ExitCombiner: expected ${N} x ${M} x ${K} log-probabilities, got ${logProbs.length}`);
    const members = Array.from({ length: M }, () => new Float32Array(N * K));
    for (let i = 0; i < N; i++) for (let m = 0; m < M; m++) members[m].set(logProbs.subarray((i * M + m) * K, (i * M + m + 1) * K), i * K);
    const out = new Float32Array(N * M * K);
    for (let m = 0; m < M; m++) {
      const q = this.combine(m, members, N);
      for (let i = 0; i < N; i++) out.set(q.subarray(i * K, (i + 1) * K), (i * M + m) * K);
    }
    return out;
  }
}

/**
 * members[0..m] hold n rows of K values, or (with rows) the same number of
 * rows each, among which every one that rows names. Runs at every exit of a
 * runtime: the rows are checked once, against member 0, not per member.
 */
export function checkMemberRows(members: readonly Float32Array[], m: number, n: number, K: number, rows?: Int32Array): void {
  const want = rows ? members[0].length : n * K;
  for (let j = 0; j <= m; j++) if (members[j].length !== want) throw new RangeError(`ExitCombiner: member ${j} has ${members[j].length} values, expected ${want}`);
  if (!rows) return;
  if (rows.length !== n) throw new RangeError(`ExitCombiner: ${rows.length} row indices for ${n} samples`);
  const have = want / K;
  for (let i = 0; i < n; i++) if (!(rows[i] >= 0 && rows[i] < have)) throw new RangeError(`ExitCombiner: row ${rows[i]} is outside member 0 (${have} rows)`);
}
