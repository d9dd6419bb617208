import { ExitRuleKind, SweepResult } from './sweep';

/** The paper's budgets, as fractions of the base network's cost. */
export const DEFAULT_BUDGET_FRACTIONS: readonly number[] = [0.25, 0.5, 0.75, 1];

/**
 * 'paper': the parameter is picked on the same split it is scored on (the reference code
 * sweeps on the test set). 'heldout': picked on a validation split, scored on the test split.
 */
export type BudgetMode = 'paper' | 'heldout';

/** One operating point chosen for a budget; all null when no parameter fits the budget. */
export interface BudgetEntry {
  /** Budget as a fraction of the base cost (0.25 = 25%); null for the "Max" entry. */
  budget: number | null;
  /** Chosen tau or patience. */
  param: number | null;
  /** Percent correct on the reported split. */
  accuracy: number | null;
  /** Mean cost actually spent on the reported split, as a fraction of the base cost. */
  costFraction: number | null;
}

export interface BudgetTable {
  rule: ExitRuleKind;
  mode: BudgetMode;
  entries: BudgetEntry[];
  /** Best accuracy without a budget (paper: best of the sweep; heldout: best on validation). */
  max: BudgetEntry;
}

/**
 * Index of the LAST parameter (in sweep order) whose mean cost is strictly below
 * budget x baseCost, or -1 when none is. Compared in cost units, not fractions, so the
 * strict inequality is not blurred by the division.
 */
export function budgetIndex(sweep: SweepResult, budget: number): number {
  const limit = budget * sweep.baseCost;
  let chosen = -1;
  for (let j = 0; j < sweep.params.length; j++) if (sweep.meanCost[j] < limit) chosen = j;
  return chosen;
}

/** Index of the best accuracy; the first (cheapest) one on ties. -1 for an empty sweep. */
export function bestAccuracyIndex(sweep: SweepResult): number {
  let best = -1;
  for (let j = 0; j < sweep.params.length; j++) {
    if (!Number.isNaN(sweep.accuracy[j]) && (best < 0 || sweep.accuracy[j] > sweep.accuracy[best])) {
      best = j;
    }
  }
  return best;
}

/** The paper's budget table: parameters chosen and scored on the same sweep. */
export function paperBudgetTable(
  sweep: SweepResult,
  options: { fractions?: readonly number[] } = {},
): BudgetTable {
  const { fractions = DEFAULT_BUDGET_FRACTIONS } = options;
  return {
    rule: sweep.rule,
    mode: 'paper',
    entries: fractions.map((f) => entryAt(sweep, budgetIndex(sweep, f), f)),
    max: entryAt(sweep, bestAccuracyIndex(sweep), null),
  };
}

/**
 * The sound budget table: each parameter is chosen on the validation sweep with the paper's
 * rule, then the test accuracy and test cost at that parameter are reported. Both sweeps must
 * use the same parameters (sweep the test split with `taus: valSweep.params`), so the choice
 * carries over exactly. Note the test cost may then exceed the budget.
 */
export function heldOutBudgetTable(
  valSweep: SweepResult,
  testSweep: SweepResult,
  options: { fractions?: readonly number[] } = {},
): BudgetTable {
  const { fractions = DEFAULT_BUDGET_FRACTIONS } = options;
  assertSameParams(valSweep, testSweep);
  return {
    rule: testSweep.rule,
    mode: 'heldout',
    entries: fractions.map((f) => entryAt(testSweep, budgetIndex(valSweep, f), f)),
    max: entryAt(testSweep, bestAccuracyIndex(valSweep), null),
  };
}

function entryAt(sweep: SweepResult, index: number, budget: number | null): BudgetEntry {
  if (index < 0) return { budget, param: null, accuracy: null, costFraction: null };
  return {
    budget,
    param: sweep.params[index],
    accuracy: sweep.accuracy[index],
    costFraction: sweep.costFraction[index],
  };
}

function assertSameParams(a: SweepResult, b: SweepResult): void {
  if (a.rule !== b.rule) throw new Error(`sweeps of different rules: ${a.rule} vs ${b.rule}`);
  if (a.params.length !== b.params.length || a.params.some((p, j) => p !== b.params[j])) {
    throw new Error('validation and test sweeps must use the same parameters');
  }
}
