import { BudgetTable, DEFAULT_BUDGET_FRACTIONS, heldOutBudgetTable, paperBudgetTable } from './budget';
import { headAccuracies, toHeadStats } from './head-stats';
import { hindsightImprovability } from './hindsight';
import { ExitRuleKind, SweepResult, sweepExitRule } from './sweep';
import { CostModel, LabelledOutputs } from './types';

export interface EvaluateMethodOptions {
  rule: ExitRuleKind;
  /** Split the results are reported on. */
  test: LabelledOutputs;
  /** Held-out split for choosing parameters; without it only the paper mode is computed. */
  val?: LabelledOutputs;
  costs: CostModel;
  fractions?: readonly number[];
  /** Number of taus in the confidence grid. */
  thresholdCount?: number;
}

/** Everything the report needs about one method on one seed; plain data, JSON-friendly. */
export interface MethodEvaluation {
  rule: ExitRuleKind;
  /** Percent correct of each head alone on the test split. */
  headAccuracies: number[];
  /** Hindsight Improvability per head on the test split, fractions in [0, 1]. */
  hindsight: number[];
  /** Test sweep over the test split's own grid (the paper's curve). */
  sweep: SweepResult;
  paper: BudgetTable;
  /** Present when a validation split was given. */
  heldout: BudgetTable | null;
  valSweep: SweepResult | null;
}

/** Sweeps one method's exit rule and builds its budget tables, HI and head accuracies. */
export function evaluateMethod(options: EvaluateMethodOptions): MethodEvaluation {
  const { rule, costs, fractions = DEFAULT_BUDGET_FRACTIONS, thresholdCount } = options;
  const testStats = toHeadStats(options.test.outputs);
  const testLabels = options.test.labels;
  const sweep = sweepExitRule(rule, testStats, testLabels, costs, { count: thresholdCount });

  let heldout: BudgetTable | null = null;
  let valSweep: SweepResult | null = null;
  if (options.val) {
    valSweep = sweepExitRule(rule, options.val.outputs, options.val.labels, costs, {
      count: thresholdCount,
    });
    // Score the test split at exactly the validation grid's parameters.
    const testAtValParams = sweepExitRule(rule, testStats, testLabels, costs, {
      params: valSweep.params,
    });
    heldout = heldOutBudgetTable(valSweep, testAtValParams, { fractions });
  }
  return {
    rule,
    headAccuracies: headAccuracies(testStats, testLabels),
    hindsight: hindsightImprovability(testStats, testLabels),
    sweep,
    paper: paperBudgetTable(sweep, { fractions }),
    heldout,
    valSweep,
  };
}
