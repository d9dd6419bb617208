import { BudgetMode } from '../eval/budget';
import { BudgetTableSummary, MeanStd, SeriesSummary } from '../eval/seeds';
import { writeFileAtomic } from '../util/atomic';
import { escapeXml, formatBudget, formatMeanStd, formatNumber } from './format';

export interface ReportMethod {
  name: string;
  /** Budget tables over seeds, any modes (one per mode is expected). */
  budgets: readonly BudgetTableSummary[];
  /** Hindsight Improvability per head over seeds, fractions in [0, 1]. */
  hindsight?: SeriesSummary;
  /** Accuracy (%) of each head alone over seeds. */
  headAccuracies?: SeriesSummary;
}

export interface ReportFigure {
  title: string;
  /** An SVG document (renderLineChart output), inlined as is. */
  svg: string;
  caption?: string;
}

export interface ReportInput {
  title: string;
  /** Plain-text paragraphs under the title. */
  intro?: readonly string[];
  /** Key facts (data set, backbone, seeds, commit, ...) shown as a small table. */
  meta?: Readonly<Record<string, string | number>>;
  /** Accuracy (%) of the plain backbone. */
  baseAccuracy?: MeanStd | null;
  methods: readonly ReportMethod[];
  /** Chance baseline of HI per head (chanceHindsightImprovability). */
  chanceHindsight?: readonly number[];
  figures?: readonly ReportFigure[];
}

const MODE_TITLES: Record<BudgetMode, string> = {
  paper: 'Budget table, paper mode (parameter chosen on the test set, as the reference code does)',
  heldout: 'Budget table, held-out mode (parameter chosen on a validation split, scored on test)',
};

const STYLE = `
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #111; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
td small { color: #666; display: block; font-size: 0.8em; }
figure { margin: 1.5em 0; } figcaption { color: #444; font-size: 0.9em; }
figure svg { max-width: 100%; height: auto; }
.note { color: #555; font-size: 0.9em; }
`;

/** A single self-contained HTML page: no external scripts, styles, fonts or images. */
export function renderHtmlReport(input: ReportInput): string {
  const parts: string[] = [];
  parts.push('<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">');
  parts.push(`<title>${escapeXml(input.title)}</title>`, `<style>${STYLE}</style>`, '</head>', '<body>');
  parts.push(`<h1>${escapeXml(input.title)}</h1>`);
  for (const p of input.intro ?? []) parts.push(`<p>${escapeXml(p)}</p>`);
  if (input.meta && Object.keys(input.meta).length > 0) {
    parts.push('<table class="meta"><tbody>');
    for (const [key, value] of Object.entries(input.meta)) {
      parts.push(`<tr><th>${escapeXml(key)}</th><td>${escapeXml(String(value))}</td></tr>`);
    }
    parts.push('</tbody></table>');
  }

  for (const mode of ['paper', 'heldout'] as const) {
    const rows = input.methods.flatMap((m) =>
      m.budgets.filter((t) => t.mode === mode).map((table) => ({ name: m.name, table })),
    );
    if (rows.length === 0) continue;
    parts.push(`<h2>${escapeXml(MODE_TITLES[mode])}</h2>`);
    parts.push(budgetTableHtml(rows, input.baseAccuracy));
    parts.push(
      '<p class="note">Accuracy in %, mean ± sample std over seeds; below it the mean cost actually ' +
        'spent, in % of the base network. For each budget the last parameter (tau ascending, or ' +
        'patience ascending) whose mean cost is strictly below the budget; "Max" is the best ' +
        'accuracy over all parameters. "(k/n)": only k of n seeds had a parameter within budget.</p>',
    );
  }

  for (const figure of input.figures ?? []) {
    parts.push('<figure>', `<h2>${escapeXml(figure.title)}</h2>`, stripXmlDeclaration(figure.svg));
    if (figure.caption) parts.push(`<figcaption>${escapeXml(figure.caption)}</figcaption>`);
    parts.push('</figure>');
  }

  const hiMethods = input.methods.filter((m) => m.hindsight);
  if (hiMethods.length > 0) {
    parts.push('<h2>Hindsight Improvability per head</h2>');
    parts.push(
      perHeadTableHtml(
        hiMethods.map((m) => ({ name: m.name, summary: m.hindsight as SeriesSummary })),
        input.chanceHindsight,
        { digits: 1, scale: 100 },
      ),
    );
    parts.push(
      '<p class="note">In %: among the samples a head gets wrong, the share some earlier head got ' +
        'right (lower is better). Chance: 1 - (1 - 1/K)^(m-1).</p>',
    );
  }
  const accMethods = input.methods.filter((m) => m.headAccuracies);
  if (accMethods.length > 0) {
    parts.push('<h2>Accuracy of each head alone (%)</h2>');
    parts.push(
      perHeadTableHtml(
        accMethods.map((m) => ({ name: m.name, summary: m.headAccuracies as SeriesSummary })),
        undefined,
        { digits: 1, scale: 1 },
      ),
    );
  }
  parts.push('</body>', '</html>', '');
  return parts.join('\n');
}

export function writeHtmlReport(filePath: string, input: ReportInput): void {
  writeFileAtomic(filePath, renderHtmlReport(input));
}

function budgetTableHtml(
  rows: readonly { name: string; table: BudgetTableSummary }[],
  baseAccuracy: MeanStd | null | undefined,
): string {
  const budgets = rows[0].table.entries.map((e) => e.budget);
  const hasBase = baseAccuracy !== undefined;
  const out: string[] = ['<table><thead><tr><th>Method</th><th>Rule</th>'];
  if (hasBase) out.push('<th>Base</th>');
  for (const b of budgets) out.push(`<th>${formatBudget(b)}</th>`);
  out.push('<th>Max</th></tr></thead><tbody>');
  for (const { name, table } of rows) {
    out.push(`<tr><td>${escapeXml(name)}</td><td>${table.rule}</td>`);
    if (hasBase) out.push(`<td>${formatMeanStd(baseAccuracy, { digits: 1 })}</td>`);
    for (const entry of [...table.entries, table.max]) {
      const accuracy = formatMeanStd(entry.accuracy, { digits: 1, of: table.seeds });
      const cost = entry.costFraction
        ? `<small>@ ${formatMeanStd(entry.costFraction, { digits: 0, scale: 100 })}%</small>`
        : '';
      out.push(`<td>${escapeXml(accuracy)}${cost}</td>`);
    }
    out.push('</tr>');
  }
  out.push('</tbody></table>');
  return out.join('');
}

function perHeadTableHtml(
  columns: readonly { name: string; summary: SeriesSummary }[],
  chance: readonly number[] | undefined,
  format: { digits: number; scale: number },
): string {
  const heads = Math.max(...columns.map((c) => c.summary.mean.length), chance?.length ?? 0);
  const out: string[] = ['<table><thead><tr><th>Head</th>'];
  for (const c of columns) out.push(`<th>${escapeXml(c.name)}</th>`);
  if (chance) out.push('<th>Chance</th>');
  out.push('</tr></thead><tbody>');
  for (let m = 0; m < heads; m++) {
    out.push(`<tr><td>${m + 1}</td>`);
    for (const { summary } of columns) {
      const value: MeanStd | null =
        m < summary.mean.length ? { mean: summary.mean[m], std: summary.std[m], n: summary.n } : null;
      out.push(`<td>${escapeXml(formatMeanStd(value, format))}</td>`);
    }
    if (chance) out.push(`<td>${formatNumber(chance[m], format)}</td>`);
    out.push('</tr>');
  }
  out.push('</tbody></table>');
  return out.join('');
}

function stripXmlDeclaration(svg: string): string {
  return svg.replace(/^\s*<\?xml[^>]*>\s*/, '');
}
