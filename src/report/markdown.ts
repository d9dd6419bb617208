import { BudgetTableSummary, MeanStd } from '../eval/seeds';
import { formatBudget, formatMeanStd } from './format';

export interface BudgetTableRow {
  /** Method name, e.g. "ZTW". */
  name: string;
  table: BudgetTableSummary;
}

export interface BudgetMarkdownOptions {
  rows: readonly BudgetTableRow[];
  /** Accuracy (%) of the plain backbone; adds a "Base" column when given. */
  baseAccuracy?: MeanStd | null;
  digits?: number;
  /** Append the mean cost actually spent, e.g. "88.1 ± 0.2 @ 74%" (useful in held-out mode). */
  showCost?: boolean;
}

/**
 * The budget table as GitHub Markdown, laid out like the paper's Table 1:
 * | Method | Base | 25% | 50% | 75% | 100% | Max |, cells "mean ± std" in percent.
 */
export function budgetTableMarkdown(options: BudgetMarkdownOptions): string {
  const { rows, baseAccuracy, digits = 1, showCost = false } = options;
  if (rows.length === 0) return '';
  const budgets = rows[0].table.entries.map((e) => e.budget);
  const hasBase = baseAccuracy !== undefined;
  const header = ['Method', ...(hasBase ? ['Base'] : []), ...budgets.map(formatBudget), 'Max'];
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, k) => (k === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const row of rows) {
    const of = row.table.seeds;
    const cell = (entry: (typeof row.table.entries)[number]) => {
      let text = formatMeanStd(entry.accuracy, { digits, of });
      if (showCost && entry.costFraction) {
        text += ` @ ${formatMeanStd(entry.costFraction, { digits: 0, scale: 100 })}%`;
      }
      return text;
    };
    const cells = [
      escapeMarkdownCell(row.name),
      ...(hasBase ? [formatMeanStd(baseAccuracy, { digits })] : []),
      ...row.table.entries.map(cell),
      cell(row.table.max),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

function escapeMarkdownCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
