// Training the per-exit ensembles on cached exit log-probabilities (the heads
// stay frozen): Adam 5e-4, batch 512, ~500 epochs, cross-entropy of every
// exit's ensemble, summed.
import { ExitEnsembles, type EnsembleKind } from '../exits/ensemble';
import { logProbsTensor, type ExitLogProbs } from '../exits/collect';
import * as F from '../nn/functional';
import { Adam } from '../optim/adam';
import { manualSeed, randperm, tensor } from '../tensor/create';
import { noGrad } from '../tensor/grad';
import { keep, tidy } from '../tensor/scope';
import { createProgress } from '../util/progress';

export interface EnsembleRecipe { kind: EnsembleKind; epochs: number; lr: number; batchSize: number; seed: number }
export const REFERENCE_ENSEMBLE_RECIPE = { epochs: 500, lr: 5e-4, batchSize: 512 };

export function trainEnsembles(inputs: ExitLogProbs, recipe: EnsembleRecipe, o: { silent?: boolean } = {}): { ensembles: ExitEnsembles; losses: number[] } {
  manualSeed(recipe.seed);
  const ens = new ExitEnsembles({ numExits: inputs.numExits, numClasses: inputs.numClasses, kind: recipe.kind });
  const losses: number[] = [];
  if (recipe.kind === 'mean') return { ensembles: ens, losses };
  const x = keep(logProbsTensor(inputs));
  const y = keep(tensor(BigInt64Array.from(inputs.labels, (v) => BigInt(v)), [inputs.numSamples], 'int64'));
  const M = inputs.numExits;
  const opt = new Adam(ens.parameters(), { lr: recipe.lr });
  const bar = createProgress({ total: recipe.epochs, label: `${recipe.kind} ensembles`, unit: 'epoch', silent: o.silent });
  const N = inputs.numSamples;
  for (let epoch = 0; epoch < recipe.epochs; epoch++) {
    let sum = 0;
    tidy(() => {
      const perm = randperm(N);
      for (let s = 0; s < N; s += recipe.batchSize) {
        tidy(() => {
          const idx = perm.narrow(0, s, Math.min(recipe.batchSize, N - s));
          const logQ = ens.forward(x.indexSelect(0, idx)); // [n, M, K]
          // Sum over exits of the mean cross-entropy: nll on log q, flattened over exits.
          const yy = y.indexSelect(0, idx).unsqueeze(1).expand(idx.shape[0], M).reshape(-1);
          const loss = F.nllLoss(logQ.reshape(-1, inputs.numClasses), yy).mul(M);
          opt.zeroGrad();
          loss.backward();
          opt.step();
          sum += loss.item() * idx.shape[0];
        });
      }
    });
    losses.push(sum / N);
    bar.increment(1, { loss: sum / N });
  }
  bar.stop();
  opt.dispose();
  x.dispose();
  y.dispose();
  return { ensembles: ens, losses };
}

/**
 * Ensemble outputs for cached exit log-probabilities: the same layout, now
 * log q, computed by the combiner the runtimes use (so offline simulation
 * and online exits agree exactly).
 */
export function applyEnsembles(ens: ExitEnsembles, inputs: ExitLogProbs): ExitLogProbs {
  return { ...inputs, logProbs: ens.combiner().combineAll(inputs.logProbs, inputs.numSamples) };
}
