// Checks an exported model against the libtorch network it came from: every
// exit's probabilities on the same inputs, and the early-exit decisions of
// both runtimes under one policy.
import type { EarlyExitNetwork } from '../exits/network';
import type { ExitEnsembles } from '../exits/ensemble';
import type { CostModel } from '../eval/types';
import * as F from '../nn/functional';
import { stack } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { tidy } from '../tensor/scope';
import type { Tensor } from '../tensor/tensor';
import { EarlyExitRuntime, type ExitResult } from '../runtime/early-exit';
import type { ExitPolicy } from '../runtime/policy';
import type { OnnxEarlyExitRuntime } from '../runtime/onnx-core';

/** libtorch: every exit's probabilities, ensembled when ensembles are given: [M][N * K]. */
export function libtorchExitProbs(net: EarlyExitNetwork, ensembles: ExitEnsembles | null, x: Tensor): Float32Array[] {
  net.eval();
  return noGrad(() =>
    tidy(() => {
      const lps = net.allLogits(x).map((l) => F.logSoftmax(l, 1));
      return lps.map((lp, m) => (ensembles ? ensembles.forwardExit(m, stack(lps.slice(0, m + 1), 1)) : lp).exp().data() as Float32Array);
    }),
  );
}

export interface DecisionComparison {
  samples: number;
  /** Samples with the same exit and prediction in both runtimes. */
  agree: number;
  /** Disagreements where some exit's confidence is within `margin` of tau (allowed). */
  nearThreshold: number;
  /** Disagreements that are not explained by the threshold margin. */
  unexplained: number[];
  maxProbDiff: number;
}

/**
 * Compares two runtimes' results under `policy`. A confidence decision may
 * legitimately differ when an exit's confidence (in either runtime) is within
 * `margin` of tau; everything else must match, and the answering exits'
 * probabilities must be within `margin`.
 */
export function compareDecisions(a: ExitResult, b: ExitResult, perExit: Float32Array[], K: number, policy: ExitPolicy, margin = 1e-4): DecisionComparison {
  const N = a.prediction.length;
  const out: DecisionComparison = { samples: N, agree: 0, nearThreshold: 0, unexplained: [], maxProbDiff: 0 };
  for (let n = 0; n < N; n++) {
    if (a.exitIndex[n] === b.exitIndex[n] && a.prediction[n] === b.prediction[n]) {
      out.agree++;
      for (let k = 0; k < K; k++) out.maxProbDiff = Math.max(out.maxProbDiff, Math.abs(a.probs[n * K + k] - b.probs[n * K + k]));
      continue;
    }
    let near = false;
    for (const p of perExit) {
      let mx = 0;
      let second = -Infinity;
      for (let k = 0; k < K; k++) {
        const v = p[n * K + k];
        if (v > mx) [second, mx] = [mx, v];
        else if (v > second) second = v;
      }
      // A tau tie, or (patience, predictions) an argmax tie between two classes.
      if ((policy.kind === 'confidence' && Math.abs(mx - policy.tau) <= margin) || mx - second <= margin) near = true;
    }
    if (near) out.nearThreshold++;
    else out.unexplained.push(n);
  }
  return out;
}

export interface VerifyReport {
  samples: number;
  /** Largest |p_onnx - p_libtorch| over all exits, samples and classes. */
  maxProbDiff: number;
  maxProbDiffPerExit: number[];
  decisions: DecisionComparison;
  policy: ExitPolicy;
  ms: { libtorch: number; onnx: number };
}

/** Runs both runtimes on x (normalised inputs [N, C, H, W]). */
export async function verifyAgainstLibtorch(rt: OnnxEarlyExitRuntime, net: EarlyExitNetwork, ensembles: ExitEnsembles | null, costs: CostModel, x: Tensor, policy: ExitPolicy = rt.manifest.policy): Promise<VerifyReport> {
  const data = x.data() as Float32Array;
  const ref = libtorchExitProbs(net, ensembles, x);
  const got = await rt.allExits(data);
  const perExit = ref.map((r, m) => r.reduce((d, v, i) => Math.max(d, Math.abs(v - got[m][i])), 0));
  const lt = new EarlyExitRuntime(net, ensembles, costs);
  let t0 = performance.now();
  const a = lt.run(x, policy);
  const tLib = performance.now() - t0;
  t0 = performance.now();
  const b = await rt.run(data, policy);
  const tOnnx = performance.now() - t0;
  return {
    samples: x.shape[0],
    maxProbDiff: Math.max(...perExit),
    maxProbDiffPerExit: perExit,
    decisions: compareDecisions(a, b, ref, rt.numClasses, policy),
    policy,
    ms: { libtorch: tLib, onnx: tOnnx },
  };
}
