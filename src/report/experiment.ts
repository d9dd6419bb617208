// Turns the per-seed results of an experiment into what people read: one
// JSON document, a Markdown budget table, curves as SVG and PNG, and a
// self-contained HTML page.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aggregateBudgetTables, meanStd, meanStdSeries, type BudgetTableSummary } from '../eval/seeds';
import { sweepCurve } from '../eval/sweep';
import { chanceHindsightImprovability } from '../eval/hindsight';
import type { SeedResult } from '../train/pipeline';
import { methodSpec } from '../exits/methods';
import { accuracyCostChartSvg, hindsightChartSvg } from './plots';
import { budgetTableMarkdown } from './markdown';
import { writeHtmlReport } from './html-report';
import { writePng } from './png';
import { writeFileAtomic } from '../util/atomic';

export interface ExperimentSummary {
  /** Accuracies in percent: [25%, 50%, 75%, 100%, Max] per method, mean over seeds. */
  budgets: { paper: Record<string, (number | null)[]>; heldout: Record<string, (number | null)[]> };
  budgetsStd: { paper: Record<string, (number | null)[]>; heldout: Record<string, (number | null)[]> };
  /** Hindsight Improvability per head (%), mean over seeds, for the confidence-exit methods. */
  hi: Record<string, number[]>;
  hiChance: number[];
  /** The plain backbone's test accuracy (%), mean over seeds. */
  base: number;
  seeds: number[];
  meta: Record<string, string | number>;
}

const row = (t: BudgetTableSummary, k: 'mean' | 'std'): (number | null)[] => [...t.entries.map((e) => e.accuracy?.[k] ?? null), t.max.accuracy?.[k] ?? null];

export function summarise(results: SeedResult[], methods: string[], meta: Record<string, string | number>): { summary: ExperimentSummary; tables: Record<string, { paper: BudgetTableSummary; heldout: BudgetTableSummary | null }> } {
  const tables: Record<string, { paper: BudgetTableSummary; heldout: BudgetTableSummary | null }> = {};
  const summary: ExperimentSummary = { budgets: { paper: {}, heldout: {} }, budgetsStd: { paper: {}, heldout: {} }, hi: {}, hiChance: [], base: meanStd(results.map((r) => r.baseAccuracy))?.mean ?? NaN, seeds: results.map((r) => r.seed), meta };
  for (const m of methods) {
    const evals = results.map((r) => r.methods[m]);
    const paper = aggregateBudgetTables(evals.map((e) => e.paper));
    const held = evals.every((e) => e.heldout) ? aggregateBudgetTables(evals.map((e) => e.heldout!)) : null;
    tables[m] = { paper, heldout: held };
    summary.budgets.paper[m] = row(paper, 'mean');
    summary.budgetsStd.paper[m] = row(paper, 'std');
    if (held) {
      summary.budgets.heldout[m] = row(held, 'mean');
      summary.budgetsStd.heldout[m] = row(held, 'std');
    }
    if (methodSpec(m).rule === 'confidence') summary.hi[m] = meanStdSeries(evals.map((e) => e.hindsight.map((h) => 100 * h))).mean;
  }
  const first = results[0];
  const anyMethod = Object.values(first.methods)[0];
  if (anyMethod) summary.hiChance = chanceHindsightImprovability(anyMethod.headAccuracies.length, Number(meta.classes ?? 10)).map((h) => 100 * h);
  return { summary, tables };
}

export function writeExperimentReport(outDir: string, results: SeedResult[], methods: string[], meta: Record<string, string | number>): { summary: ExperimentSummary; files: string[] } {
  fs.mkdirSync(outDir, { recursive: true });
  const { summary, tables } = summarise(results, methods, meta);
  const names = Object.fromEntries(methods.map((m) => [m, methodSpec(m).name]));
  // Curves of the first seed (each seed's sweep has its own cost points).
  const curves = accuracyCostChartSvg({
    title: `${meta.arch} on ${meta.data}: accuracy vs. inference cost (seed ${results[0].seed})`,
    series: methods.map((m) => ({ name: names[m], points: sweepCurve(results[0].methods[m].sweep).map((p) => ({ costFraction: p.costFraction, accuracy: p.accuracy })) })),
    base: { accuracy: results[0].baseAccuracy, name: 'base network' },
  });
  const hiMethods = methods.filter((m) => methodSpec(m).rule === 'confidence');
  const hiSvg = hindsightChartSvg({
    methods: hiMethods.map((m) => ({ name: names[m], values: results[0].methods[m].hindsight })),
    chance: summary.hiChance.map((h) => h / 100),
  });
  const files: string[] = [];
  const put = (name: string, data: string | Buffer): void => {
    writeFileAtomic(path.join(outDir, name), data);
    files.push(path.join(outDir, name));
  };
  put('curves.svg', curves);
  put('hindsight.svg', hiSvg);
  writePng(path.join(outDir, 'curves.png'), curves);
  writePng(path.join(outDir, 'hindsight.png'), hiSvg);
  files.push(path.join(outDir, 'curves.png'), path.join(outDir, 'hindsight.png'));
  const base = meanStd(results.map((r) => r.baseAccuracy));
  const md = [
    `## ${meta.arch} on ${meta.data} (${results.length} seed${results.length > 1 ? 's' : ''})`,
    '',
    'Paper mode (threshold chosen on the test set, as the reference code):',
    '',
    budgetTableMarkdown({ rows: methods.map((m) => ({ name: names[m], table: tables[m].paper })), baseAccuracy: base }),
    '',
    'Held-out mode (threshold chosen on the validation split, accuracy on test, cost actually spent):',
    '',
    budgetTableMarkdown({ rows: methods.filter((m) => tables[m].heldout).map((m) => ({ name: names[m], table: tables[m].heldout! })), baseAccuracy: base, showCost: true }),
    '',
  ].join('\n');
  put('report.md', md);
  writeHtmlReport(path.join(outDir, 'report.html'), {
    title: `Zero Time Waste: ${meta.arch} on ${meta.data}`,
    meta,
    baseAccuracy: base,
    methods: methods.map((m) => ({
      name: names[m],
      budgets: [tables[m].paper, ...(tables[m].heldout ? [tables[m].heldout!] : [])],
      hindsight: methodSpec(m).rule === 'confidence' ? meanStdSeries(results.map((r) => r.methods[m].hindsight)) : undefined,
      headAccuracies: meanStdSeries(results.map((r) => r.methods[m].headAccuracies)),
    })),
    chanceHindsight: summary.hiChance.map((h) => h / 100),
    figures: [
      { title: 'Accuracy vs. inference cost', svg: curves },
      { title: 'Hindsight Improvability per head', svg: hiSvg },
    ],
  });
  files.push(path.join(outDir, 'report.html'));
  put('results.json', JSON.stringify({ ...summary, perSeed: results.map((r) => ({ seed: r.seed, base: r.baseAccuracy, methods: Object.fromEntries(Object.entries(r.methods).map(([k, v]) => [k, { paper: v.paper, heldout: v.heldout, hindsight: v.hindsight, headAccuracies: v.headAccuracies }])) })) }, null, 1));
  return { summary, files };
}

/** The budget table for the terminal. */
export function budgetText(summary: ExperimentSummary, mode: 'paper' | 'heldout'): string {
  const lines = [`${mode === 'paper' ? 'paper mode (tau on test)' : 'held-out mode (tau on validation)'} — base ${summary.base.toFixed(2)}%`, 'method          25%     50%     75%    100%     Max'];
  for (const [m, accs] of Object.entries(summary.budgets[mode])) lines.push(`${m.padEnd(12)} ${accs.map((a) => (a === null ? '     -' : a.toFixed(2).padStart(6))).join('  ')}`);
  return lines.join('\n');
}
