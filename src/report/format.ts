import { MeanStd } from '../eval/seeds';

/** Escapes text for HTML and SVG (both XML-ish) content and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export interface FormatOptions {
  digits?: number;
  /** Multiplier before printing, e.g. 100 to show a fraction as a percentage. */
  scale?: number;
  /** Text for a missing value. */
  missing?: string;
}

export function formatNumber(value: number | null | undefined, options: FormatOptions = {}): string {
  const { digits = 1, scale = 1, missing = '–' } = options;
  if (value === null || value === undefined || Number.isNaN(value)) return missing;
  return (value * scale).toFixed(digits);
}

/**
 * "mean ± std"; just the mean for a single seed (its std of 0 says nothing). When fewer seeds
 * than `of` contributed, says so, e.g. "71.2 ± 0.4 (2/3)".
 */
export function formatMeanStd(
  value: MeanStd | null | undefined,
  options: FormatOptions & { of?: number; plusMinus?: string } = {},
): string {
  const { missing = '–', of, plusMinus = ' ± ' } = options;
  if (!value || Number.isNaN(value.mean)) return missing;
  let text = formatNumber(value.mean, options);
  if (value.n > 1) text += plusMinus + formatNumber(value.std, options);
  if (of !== undefined && value.n < of) text += ` (${value.n}/${of})`;
  return text;
}

/** "25%" for 0.25. */
export function formatBudget(budget: number | null): string {
  return budget === null ? 'Max' : `${+(budget * 100).toFixed(2)}%`;
}
