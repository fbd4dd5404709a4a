// Evaluation reports as the evaluate stage writes them (reports/<model>/evaluation.json and
// evaluation.md), small and deterministic, for the publish and pr-evaluate tests.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvaluationReport, GateResult } from '../../pipeline/evaluate/types.ts';

/** A classification report; `classCount` above 3 makes classes c0, c1, … (a large report). */
export function evaluationReport(model: string, verdict: 'pass' | 'fail', accuracy = 0.9, classCount = 3): EvaluationReport {
  const gate = (status: GateResult['status']): GateResult => ({
    name: 'min accuracy',
    kind: 'minimum',
    metric: 'accuracy',
    threshold: 0.8,
    value: status === 'skipped' ? null : accuracy,
    status,
    message: `accuracy ${accuracy} vs 0.8`,
  });
  const classes = classCount === 3 ? ['Dry', 'Normal', 'Oily'] : Array.from({ length: classCount }, (_, i) => `c${i}`);
  const matrix = classes.map((_, t) => classes.map((_, p) => (t === p ? 36 : 2)));
  return {
    format: 'skintwin-evaluation',
    version: 1,
    model,
    task: 'classification',
    createdAt: '2026-11-20T10:00:00.000Z',
    challenger: { onnx: `models/${model}/model.onnx`, onnxSha256: 'a'.repeat(64), card: `models/${model}/model-card.json` },
    data: { path: `data/processed/${model}`, split: 'test', rows: 120 },
    metrics: {
      task: 'classification',
      n: 120,
      classes,
      accuracy,
      balanced_accuracy: accuracy,
      precision_macro: accuracy,
      recall_macro: accuracy,
      f1_macro: accuracy,
      precision_micro: accuracy,
      recall_micro: accuracy,
      f1_micro: accuracy,
      precision_weighted: accuracy,
      recall_weighted: accuracy,
      f1_weighted: accuracy,
      roc_auc_ovr: 0.95,
      log_loss: 0.3,
      brier: 0.1,
      ece: 0.02,
      top2_accuracy: 0.99,
      per_class: Object.fromEntries(classes.map((c) => [c, { precision: accuracy, recall: accuracy, f1: accuracy, support: 40, roc_auc: 0.95 }])),
      confusion_matrix: matrix,
      reliability: [],
    },
    slices: {},
    champion: { source: 'registry', reason: 'production version in models/registry.yaml', version: 'v1.0.0' },
    comparison: [{ metric: 'accuracy', challenger: accuracy, champion: 0.85, delta: accuracy - 0.85, ci95: [accuracy - 0.9, accuracy - 0.8] }],
    mcnemar: null,
    gates: [gate(verdict === 'pass' ? 'pass' : 'fail')],
    verdict,
    plots: [{ name: 'confusion', file: 'confusion.svg', title: 'Confusion matrix' }],
  };
}

/** Write reports/<model>/evaluation.json (+ evaluation.md when `markdown` is given, as the stage does). */
export async function writeReport(reportsDir: string, report: EvaluationReport, markdown?: string): Promise<void> {
  const dir = join(reportsDir, report.model);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'evaluation.json'), JSON.stringify(report, null, 2));
  if (markdown !== undefined) await writeFile(join(dir, 'evaluation.md'), markdown);
}
