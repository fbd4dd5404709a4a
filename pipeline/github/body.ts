// What a model's pull-request comment and check run say: the hidden marker that finds the comment
// again on the next push, and the body: the evaluate stage's evaluation.md when it wrote one, else
// a compact rendering of evaluation.json (verdict, headline deltas with intervals, gates).

import type { EvaluationReport } from '../evaluate/types.ts';

/** The hidden first line of a model's evaluation comment. */
export function evaluationMarker(model: string): string {
  return `<!-- skintwin:evaluation model=${model} -->`;
}

const num = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(4));
const signed = (v: number | null | undefined): string => {
  const t = num(v);
  return t !== '—' && v! > 0 ? `+${t}` : t;
};
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** A compact markdown rendering of a report, for when the stage wrote no evaluation.md. */
export function renderFallbackMarkdown(report: EvaluationReport): string {
  const lines: string[] = [];
  const gates = report.gates;
  const passed = gates.filter((g) => g.status === 'pass').length;
  lines.push(`### Evaluation of \`${report.model}\`: ${report.verdict === 'pass' ? '✅ pass' : '❌ fail'}`, '');
  lines.push(`Champion: ${report.champion.source}${report.champion.version ? ` ${report.champion.version}` : ''} (${report.champion.reason}). Test rows: ${report.data.rows}.`, '');
  if (report.comparison.length) {
    lines.push('| metric | challenger | champion | delta | 95% CI |', '|---|---:|---:|---:|---|');
    for (const d of report.comparison) {
      const ci = d.ci95 ? `[${signed(d.ci95[0])}, ${signed(d.ci95[1])}]` : '—';
      lines.push(`| ${cell(d.metric)} | ${num(d.challenger)} | ${num(d.champion)} | ${signed(d.delta)} | ${ci} |`);
    }
    lines.push('');
  }
  lines.push(`**Gates**: ${passed}/${gates.length} passed`, '');
  if (gates.length) {
    lines.push('| gate | value | threshold | status |', '|---|---:|---:|---|');
    for (const g of gates) lines.push(`| ${cell(g.name)} | ${num(g.value)} | ${num(g.threshold)} | ${g.status} |`);
    lines.push('');
  }
  return lines.join('\n');
}

/** One line for a check run title: the verdict and the gate count. */
export function checkTitle(report: EvaluationReport): string {
  const passed = report.gates.filter((g) => g.status === 'pass').length;
  const failed = report.gates.filter((g) => g.status === 'fail').length;
  const verdict = report.verdict === 'pass' ? 'pass' : 'fail';
  return `${report.model}: ${verdict} (${passed} gate(s) passed, ${failed} failed, ${report.gates.length - passed - failed} skipped)`;
}
