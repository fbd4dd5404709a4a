// What a model's pull-request comment and check run say. The comment is rendered here, in the
// trusted publishing job, from the validated evaluation.json (never from markdown the evaluated
// code could have written), by the one renderer evaluation.md and the job summaries also use.

import type { EvaluationReport } from '../evaluate/types.ts';
import { evaluationMarker, renderEvaluationMarkdown } from '../report/markdown.ts';

export { evaluationMarker };

/** The markdown of a model's comment: its hidden marker first, plots linked to `artifactUrl`. */
export function evaluationMarkdown(report: EvaluationReport, artifactUrl?: string): string {
  return renderEvaluationMarkdown(report, { marker: evaluationMarker(report.model), ...(artifactUrl ? { artifactUrl } : {}) });
}

/** One line for a check run title: the verdict and the gate counts. */
export function checkTitle(report: EvaluationReport): string {
  const passed = report.gates.filter((g) => g.status === 'pass').length;
  const failed = report.gates.filter((g) => g.status === 'fail').length;
  return `${report.model}: ${report.verdict} (${passed} gate(s) passed, ${failed} failed, ${report.gates.length - passed - failed} skipped)`;
}
