import { BudgetEntry, BudgetMode, BudgetTable } from './budget';
import { ExitRuleKind } from './sweep';

/** Mean and sample standard deviation (n - 1) over the seeds that had a value. */
export interface MeanStd {
  mean: number;
  std: number;
  /** How many seeds contributed; fewer than the runs when some had no value. */
  n: number;
}

/**
 * Mean and sample std, skipping null and NaN (e.g. a budget no parameter fits in one seed).
 * std is 0 for a single value; the result is null when no value is left.
 */
export function meanStd(values: readonly (number | null)[]): MeanStd | null {
  const present = values.filter((v): v is number => v !== null && !Number.isNaN(v));
  const n = present.length;
  if (n === 0) return null;
  const mean = present.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0, n };
  const squares = present.reduce((a, v) => a + (v - mean) * (v - mean), 0);
  return { mean, std: Math.sqrt(squares / (n - 1)), n };
}

/** Element-wise mean and std of equally long arrays (e.g. HI per head over seeds). */
export interface SeriesSummary {
  mean: number[];
  std: number[];
  n: number;
}

export function meanStdSeries(series: readonly (readonly number[])[]): SeriesSummary {
  if (series.length === 0) throw new Error('no series to average');
  const length = series[0].length;
  if (series.some((s) => s.length !== length)) throw new Error('series of different lengths');
  const mean: number[] = [];
  const std: number[] = [];
  for (let k = 0; k < length; k++) {
    const summary = meanStd(series.map((s) => s[k]));
    mean.push(summary ? summary.mean : NaN);
    std.push(summary ? summary.std : NaN);
  }
  return { mean, std, n: series.length };
}

export interface BudgetEntrySummary {
  budget: number | null;
  accuracy: MeanStd | null;
  costFraction: MeanStd | null;
  /** Chosen parameter of each seed, in seed order (null where none fitted). */
  params: (number | null)[];
}

export interface BudgetTableSummary {
  rule: ExitRuleKind;
  mode: BudgetMode;
  seeds: number;
  entries: BudgetEntrySummary[];
  max: BudgetEntrySummary;
}

/** Mean ± std over seeds of budget tables made with the same rule, mode and budgets. */
export function aggregateBudgetTables(tables: readonly BudgetTable[]): BudgetTableSummary {
  if (tables.length === 0) throw new Error('no budget tables to aggregate');
  const [first] = tables;
  for (const t of tables) {
    if (t.rule !== first.rule || t.mode !== first.mode) {
      throw new Error(`cannot aggregate ${t.rule}/${t.mode} with ${first.rule}/${first.mode}`);
    }
    if (
      t.entries.length !== first.entries.length ||
      t.entries.some((e, k) => e.budget !== first.entries[k].budget)
    ) {
      throw new Error('budget tables have different budgets');
    }
  }
  return {
    rule: first.rule,
    mode: first.mode,
    seeds: tables.length,
    entries: first.entries.map((_, k) => summariseEntries(tables.map((t) => t.entries[k]))),
    max: summariseEntries(tables.map((t) => t.max)),
  };
}

function summariseEntries(entries: readonly BudgetEntry[]): BudgetEntrySummary {
  return {
    budget: entries[0].budget,
    accuracy: meanStd(entries.map((e) => e.accuracy)),
    costFraction: meanStd(entries.map((e) => e.costFraction)),
    params: entries.map((e) => e.param),
  };
}
