// `skintwin metrics <predictions.jsonl> --task classification|detection`: the evaluate stage's
// metrics from a predictions file, so a team training elsewhere can score its own outputs.

import { resolve } from 'node:path';
import { ConfigurationError, ExitCode } from '../../core/errors.ts';
import { suggestion } from '../../core/suggest.ts';
import { metricsFromFile } from '../../evaluate/metrics/predictions.ts';
import { CLASSIFICATION_HEADLINE, DETECTION_HEADLINE, type MetricsReport } from '../../evaluate/types.ts';
import { printJson } from '../common.ts';
import type { CliCommand } from '../types.ts';

const TASKS = ['classification', 'detection'] as const;

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(4));

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** The report for a person: headline, per-class rows, and per slice key its values with the worst and the gap. */
export function renderMetrics(report: MetricsReport, file: string): string {
  const m = report.metrics;
  const values = m as unknown as Record<string, number | null>;
  const keys: readonly string[] = m.task === 'classification' ? CLASSIFICATION_HEADLINE : DETECTION_HEADLINE;
  let text = `${m.task === 'classification' ? 'Classification' : 'Detection'} metrics of ${file}: ${m.n} ${m.task === 'classification' ? 'rows' : 'images'}, ${m.classes.length} classes`;
  text += m.task === 'detection' ? ` (precision/recall/f1 at confidence ≥ ${m.confidence}, IoU 0.5)\n\n` : '\n\n';
  text += table([['METRIC', 'VALUE'], ...keys.map((k) => [k, fmt(values[k])])]);
  text += '\n';
  if (m.task === 'classification') {
    const rows = [['CLASS', 'PRECISION', 'RECALL', 'F1', 'ROC-AUC', 'SUPPORT']];
    for (const c of m.classes) {
      const s = m.per_class[c]!;
      rows.push([c, fmt(s.precision), fmt(s.recall), fmt(s.f1), fmt(s.roc_auc), String(s.support)]);
    }
    text += table(rows);
  } else {
    const rows = [['CLASS', 'AP50', 'AP50-95', 'PRECISION', 'RECALL', 'F1', 'GT', 'PRED']];
    for (const c of m.classes) {
      const s = m.per_class[c]!;
      const ap = s.support ? [fmt(s.ap50), fmt(s.ap50_95)] : ['-', '-'];
      rows.push([c, ...ap, fmt(s.precision), fmt(s.recall), fmt(s.f1), String(s.support), String(s.predictions)]);
    }
    text += table(rows);
    text += 'Classes without ground truth (AP shown as -) are left out of the mAP.\n';
  }
  for (const slice of Object.values(report.slices)) {
    text += `\nSlice ${slice.key} (${slice.metric}): `;
    text += slice.worst && slice.best ? `worst ${slice.worst.value} ${fmt(slice.worst.score)}, best ${slice.best.value} ${fmt(slice.best.score)}, gap ${fmt(slice.gap)}\n` : 'no rows\n';
    const rows = [['VALUE', 'N', slice.metric.toUpperCase()]];
    for (const [value, v] of Object.entries(slice.values)) {
      const score = v.metrics ? (v.metrics as unknown as Record<string, number>)[slice.metric] : null;
      rows.push([value, String(v.n), v.metrics ? fmt(score) : 'no rows']);
    }
    text += table(rows);
  }
  return text;
}

export const metricsCommand: CliCommand = {
  name: 'metrics',
  summary: 'compute evaluation metrics (overall, per class, per slice) from a predictions file (JSON lines)',
  usage: 'skintwin metrics <predictions.jsonl> --task classification|detection [--classes a,b,c] [--json]',
  description:
    'The same metric code as the evaluate stage. One JSON object per line:\n' +
    '  classification: {"id", "label": "<true class>", "probs": {"<class>": p, …}, "slice": {"skin_tone": "V", …}}\n' +
    '  detection:      {"id", "gt": [{"cls", "box": [x1, y1, x2, y2]}], "pred": [{"cls", "conf", "box"}], "slice": {…}}\n' +
    'Boxes are in pixels. Probabilities must sum to 1 (± 0.001). Every slice key found in the rows gets a\n' +
    'breakdown with its worst value and the gap to the best. See docs/metrics.md for definitions.',
  options: [
    { name: 'task', type: 'string', value: '<classification|detection>', description: 'what the predictions are' },
    { name: 'classes', type: 'string', value: '<a,b,c>', description: "the model's classes in order (default: the first row's probs keys; for detection, classes as they appear)" },
    { name: 'json', type: 'boolean', description: 'print the report (metrics and slices) as one JSON document' },
    { name: 'help', type: 'boolean', description: 'show this help' },
  ],
  async run(ctx) {
    const [file, ...more] = ctx.args.positionals;
    if (file === undefined) throw new ConfigurationError('`metrics` needs a predictions file: skintwin metrics <predictions.jsonl> --task classification|detection');
    if (more.length) throw new ConfigurationError(`\`metrics\` takes one predictions file, got also \`${more[0]}\``);
    const task = ctx.args.flags.task;
    if (typeof task !== 'string' || task === '') throw new ConfigurationError('`metrics` needs `--task classification|detection`', { field: 'task' });
    if (!(TASKS as readonly string[]).includes(task)) {
      throw new ConfigurationError(`unknown task \`${task}\``, { field: 'task', hint: suggestion(task, TASKS) ?? `one of ${TASKS.join(', ')}` });
    }
    const rawClasses = ctx.args.flags.classes;
    let classes: string[] | undefined;
    if (typeof rawClasses === 'string') {
      classes = rawClasses.split(',').map((c) => c.trim());
      if (classes.some((c) => c === '')) throw new ConfigurationError('`--classes` must be a comma-separated list of names', { field: 'classes' });
      if (new Set(classes).size !== classes.length) throw new ConfigurationError('`--classes` lists a class twice', { field: 'classes' });
    }
    const report = await metricsFromFile(resolve(ctx.io.cwd, file), file, task as (typeof TASKS)[number], {
      ...(classes ? { classes } : {}),
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (ctx.args.flags.json) printJson(ctx.io, report);
    else ctx.io.stdout.write(renderMetrics(report, file));
    return ExitCode.ok;
  },
};
