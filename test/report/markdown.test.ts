import { describe, it, expect } from 'vitest';
import {
  DEFAULT_MAX_CHARS,
  GITHUB_COMMENT_LIMIT,
  deltaSignificance,
  evaluationMarker,
  renderEvaluationMarkdown,
} from '../../pipeline/report/markdown.ts';
import type { EvaluationReport, SliceValue } from '../../pipeline/evaluate/types.ts';
import { chainReport, classificationMetrics, confusion, contextCorrectionReport, detectionReport, rng, skinTypeReport, sliceOf } from './fixtures.ts';

const all: [string, () => EvaluationReport][] = [
  ['skin-type', skinTypeReport],
  ['skin-detection', detectionReport],
  ['chain', chainReport],
  ['context-correction', contextCorrectionReport],
];

/** The markdown table that follows the line matching `header`, as rows of trimmed cells. */
function tableAfter(md: string, header: RegExp): string[][] {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => header.test(l));
  expect(start, `no table header ${header}`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

describe('evaluationMarker', () => {
  it('is a hidden HTML comment naming the model', () => {
    expect(evaluationMarker('skin-type')).toBe('<!-- skintwin:evaluation model=skin-type -->');
  });
  it('cannot end the comment early', () => {
    const marker = evaluationMarker('a-->b<x>');
    expect(marker.slice(4, -4)).not.toMatch(/--|>/);
  });
});

describe('renderEvaluationMarkdown', () => {
  it('puts the marker first, then the title and the verdict', () => {
    const md = renderEvaluationMarkdown(skinTypeReport(), { marker: evaluationMarker('skin-type') });
    const lines = md.split('\n');
    expect(lines[0]).toBe('<!-- skintwin:evaluation model=skin-type -->');
    expect(lines[1]).toBe('### Evaluation: skin-type (classification)');
    expect(lines[3]).toMatch(/^\*\*❌ fail\*\* — failing gate: \*\*max slice gap skin\\_tone\*\*/);
  });

  it('has no marker unless asked, and takes a custom title', () => {
    const md = renderEvaluationMarkdown(skinTypeReport(), { title: '## skin-type on PR #12' });
    expect(md.startsWith('## skin-type on PR #12\n')).toBe(true);
    expect(md).not.toContain('<!--');
  });

  it('reports a pass with the skipped gates named', () => {
    const md = renderEvaluationMarkdown(detectionReport());
    expect(md).toContain('**✅ pass** — 1 of 2 gates passed; skipped: **max regression map50**');
  });

  it('names the champion, or why there is no comparison', () => {
    expect(renderEvaluationMarkdown(skinTypeReport())).toContain('Champion (registry): skin-type@v1.2.0, sha256 b2b2b2b2b2b2 — production version');
    expect(renderEvaluationMarkdown(chainReport())).toContain('Champion (base branch): sha256 e5e5e5e5e5e5');
    expect(renderEvaluationMarkdown(detectionReport())).toContain('No comparison: no production version of skin-detection in models/registry.yaml yet');
  });

  it('shows the headline metrics with challenger, champion, delta and interval', () => {
    const r = skinTypeReport();
    const md = renderEvaluationMarkdown(r);
    const rows = tableAfter(md, /^\| metric \| challenger \| champion \| Δ \| 95% CI \|$/);
    expect(rows.map((row) => row[0])).toEqual(['accuracy', 'balanced\\_accuracy', 'f1\\_macro', 'roc\\_auc\\_ovr', 'log\\_loss ↓', 'ece ↓']);
    const acc = r.comparison.find((d) => d.metric === 'accuracy')!;
    expect(rows[0]!.slice(1, 3)).toEqual([acc.challenger!.toFixed(4), acc.champion!.toFixed(4)]);
    expect(rows[0]![4]).toBe(`[${acc.ci95![0] > 0 ? '+' : ''}${acc.ci95![0].toFixed(4)}, ${acc.ci95![1] > 0 ? '+' : ''}${acc.ci95![1].toFixed(4)}]`);
    // The other ten headline keys are folded, not lost.
    expect(md).toContain('<details><summary>All headline metrics (16)</summary>');
    expect(md).toMatch(/\| top2\\_accuracy \| /);
  });

  it('shows only the values when there is no champion', () => {
    const rows = tableAfter(renderEvaluationMarkdown(detectionReport()), /^\| metric \| value \|$/);
    expect(rows.map((row) => row[0])).toEqual(['map50', 'map50\\_95', 'precision', 'recall', 'f1']);
  });

  describe('arrows', () => {
    it('mark only intervals that exclude 0, better or worse by the metric direction', () => {
      expect(deltaSignificance({ metric: 'accuracy', ci95: [0.01, 0.03] })).toBe('better');
      expect(deltaSignificance({ metric: 'accuracy', ci95: [-0.03, -0.01] })).toBe('worse');
      expect(deltaSignificance({ metric: 'log_loss', ci95: [0.01, 0.03] })).toBe('worse');
      expect(deltaSignificance({ metric: 'ece', ci95: [-0.03, -0.01] })).toBe('better');
      expect(deltaSignificance({ metric: 'accuracy', ci95: [-0.01, 0.03] })).toBeNull();
      expect(deltaSignificance({ metric: 'accuracy', ci95: [0, 0.03] })).toBeNull();
      expect(deltaSignificance({ metric: 'accuracy', ci95: null })).toBeNull();
    });

    it('appear in the delta cell exactly where the interval excludes 0', () => {
      const r = skinTypeReport();
      r.comparison = r.comparison.map((d) =>
        d.metric === 'accuracy' ? { ...d, delta: 0.02, ci95: [0.01, 0.03] }
        : d.metric === 'log_loss' ? { ...d, delta: 0.05, ci95: [0.02, 0.08] }
        : d.metric === 'ece' ? { ...d, delta: -0.01, ci95: [-0.02, -0.001] }
        : { ...d, ci95: [-0.01, 0.01] },
      );
      const rows = tableAfter(renderEvaluationMarkdown(r), /^\| metric \| challenger \| champion \| Δ \| 95% CI \|$/);
      const delta = Object.fromEntries(rows.map((row) => [row[0], row[3]]));
      expect(delta['accuracy']).toBe('🟢 ↑ +0.0200');
      expect(delta['log\\_loss ↓']).toBe('🔴 ↑ +0.0500');
      expect(delta['ece ↓']).toBe('🟢 ↓ -0.0100');
      expect(delta['f1\\_macro']).not.toMatch(/[🟢🔴↑↓]/u);
      expect(delta['balanced\\_accuracy']).not.toMatch(/[🟢🔴↑↓]/u);
    });

    it('are absent when the comparison has no intervals', () => {
      const rows = tableAfter(renderEvaluationMarkdown(chainReport()), /^\| metric \| challenger \| champion \| Δ \| 95% CI \|$/);
      expect(rows).toEqual([
        ['f1\\_macro', '0.5825', '0.6100', '-0.0275', '—'],
        ['severity\\_agreement', '0.4825', '0.4700', '+0.0125', '—'],
      ]);
    });
  });

  it('gives the McNemar test for accuracy when there is one', () => {
    expect(renderEvaluationMarkdown(skinTypeReport())).toContain(
      'McNemar on accuracy: challenger alone right on 31 rows, champion alone on 18; statistic 2.939, p = 0.0864 (no significant difference at 0.05).',
    );
    expect(renderEvaluationMarkdown(contextCorrectionReport())).toContain('p = 0.0131 (significant at 0.05: challenger better)');
    expect(renderEvaluationMarkdown(detectionReport())).not.toContain('McNemar');
  });

  it('lists the gates, failures first, with threshold, value and status', () => {
    const rows = tableAfter(renderEvaluationMarkdown(detectionReport()), /^\| gate \| threshold \| value \| status \| note \|$/);
    expect(rows).toEqual([
      ['max regression map50', '0.0200', '—', '⏭️ skipped', 'no champion to compare with'],
      ['min map50', '0.3000', detectionReport().gates[0]!.value!.toFixed(4), '✅ pass', ''],
    ]);
  });

  it('summarises every slice key: worst, best, gap, and the empty values', () => {
    const r = skinTypeReport();
    const rows = tableAfter(renderEvaluationMarkdown(r), /^\| slice \| metric \| worst \| best \| gap \|/);
    const tone = r.slices['skin_tone']!;
    expect(rows[0]).toEqual([
      'skin\\_tone',
      'f1\\_macro',
      `⚠️ **V**: ${tone.worst!.score.toFixed(4)} (n=${tone.values['V']!.n})`,
      `II: ${tone.best!.score.toFixed(4)} (n=${tone.values['II']!.n})`,
      tone.gap.toFixed(4),
      '5 of 6 (no rows: VI)',
    ]);
    expect(rows[1]![0]).toBe('source');
  });

  it('puts skin tone first even when the report lists it last', () => {
    const r = skinTypeReport();
    r.slices = { source: r.slices['source']!, skin_tone: r.slices['skin_tone']! };
    const rows = tableAfter(renderEvaluationMarkdown(r), /^\| slice \| metric \| worst \| best \| gap \|/);
    expect(rows.map((row) => row[0])).toEqual(['skin\\_tone', 'source']);
  });

  it('folds every slice value with n, showing empty slices as "no rows"', () => {
    const r = skinTypeReport();
    const rows = tableAfter(renderEvaluationMarkdown(r), /^\| value \| n \| f1\\_macro \| vs best \| accuracy \| balanced\\_accuracy \| recall\\_macro \| ece ↓ \|$/);
    expect(rows.map((row) => row[0])).toEqual(['I', 'II (best)', 'III', 'IV', 'V (worst)', 'VI', '_all rows_']);
    expect(rows[5]).toEqual(['VI', '0', 'no rows', '—', '—', '—', '—', '—']);
    const v = r.slices['skin_tone']!.values['V']!;
    const vm = v.metrics as ReturnType<typeof classificationMetrics>;
    expect(rows[4]).toEqual(['V (worst)', String(v.n), vm.f1_macro.toFixed(4), (-r.slices['skin_tone']!.gap).toFixed(4), vm.accuracy.toFixed(4), vm.balanced_accuracy.toFixed(4), vm.recall_macro.toFixed(4), vm.ece.toFixed(4)]);
  });

  it('draws the per-tone metric as a Mermaid xychart-beta bar chart without the empty tone', () => {
    const r = skinTypeReport();
    const md = renderEvaluationMarkdown(r);
    const chart = /```mermaid\nxychart-beta\n([\s\S]*?)```/.exec(md);
    expect(chart).not.toBeNull();
    const body = chart![1]!;
    expect(body).toContain('x-axis "skin_tone" ["I", "II", "III", "IV", "V"]');
    expect(body).toContain('y-axis "f1_macro" 0 --> 1');
    const values = ['I', 'II', 'III', 'IV', 'V'].map((t) => (r.slices['skin_tone']!.values[t]!.metrics as { f1_macro: number }).f1_macro.toFixed(4));
    expect(body).toContain(`bar [${values.join(', ')}]`);
  });

  it('charts per-class AP50 for detection and calibration for classification', () => {
    const d = detectionReport();
    const ap = (d.metrics as { per_class: Record<string, { ap50: number }> }).per_class;
    const md = renderEvaluationMarkdown(d);
    expect(md).toContain(`    bar [${Object.values(ap).map((c) => c.ap50.toFixed(4)).join(', ')}]`);
    const s = skinTypeReport();
    const bins = (s.metrics as { reliability: { count: number; accuracy: number; confidence: number }[] }).reliability.filter((b) => b.count > 0);
    const calibration = renderEvaluationMarkdown(s).split('<summary>Calibration')[1]!;
    expect(calibration).toContain(`    bar [${bins.map((b) => b.accuracy.toFixed(4)).join(', ')}]`);
    expect(calibration).toContain(`    line [${bins.map((b) => b.confidence.toFixed(4)).join(', ')}]`);
  });

  it('keeps quotes in slice values from breaking a Mermaid chart', () => {
    const r = skinTypeReport();
    const tone = r.slices['skin_tone']!;
    tone.values = { 'say "V"': tone.values['V']!, I: tone.values['I']! };
    tone.worst = { value: 'say "V"', score: tone.worst!.score };
    const md = renderEvaluationMarkdown(r);
    expect(md).toContain(`x-axis "skin_tone" ["say 'V'", "I"]`);
    expect(md).toContain(`title "f1_macro per skin_tone, worst say 'V'"`);
  });

  it('shows a small confusion matrix as a table: rows true, columns predicted, diagonal bold', () => {
    const r = skinTypeReport();
    const cm = (r.metrics as { confusion_matrix: number[][] }).confusion_matrix;
    const rows = tableAfter(renderEvaluationMarkdown(r), /^\| true ↓ \/ predicted → \| Dry \| Normal \| Oily \|$/);
    expect(rows).toEqual([
      ['**Dry**', `**${cm[0]![0]}**`, String(cm[0]![1]), String(cm[0]![2])],
      ['**Normal**', String(cm[1]![0]), `**${cm[1]![1]}**`, String(cm[1]![2])],
      ['**Oily**', String(cm[2]![0]), String(cm[2]![1]), `**${cm[2]![2]}**`],
    ]);
  });

  it('folds the per-class table, with the champion per class', () => {
    const md = renderEvaluationMarkdown(skinTypeReport());
    expect(md).toContain('<details><summary>Per-class metrics (3 classes)</summary>');
    const rows = tableAfter(md, /^\| class \| precision \| recall \| f1 \| champion f1 \| Δ f1 \| support \| ROC-AUC \|$/);
    expect(rows.map((row) => row[0])).toEqual(['Dry', 'Normal', 'Oily']);
  });

  it('gives detection its per-class AP table and chain its bucket table', () => {
    const d = detectionReport();
    const apRows = tableAfter(renderEvaluationMarkdown(d), /^\| class \| AP50 \| AP50-95 \|/);
    expect(apRows).toHaveLength(10);
    expect(apRows[0]!.slice(0, 2)).toEqual(['Acne', (d.metrics as { per_class: Record<string, { ap50: number }> }).per_class['Acne']!.ap50.toFixed(4)]);
    const bucketRows = tableAfter(renderEvaluationMarkdown(chainReport()), /^\| bucket \| precision \| recall \| f1 \| support \| severity agreement \|$/);
    expect(bucketRows.map((row) => row[0])).toEqual(['acne', 'wrinkles', 'dark\\_spots', 'redness']);
    expect(bucketRows[3]).toEqual(['redness', '0.4500', '0.3500', '0.4000', '12', '0.3000']);
  });

  it('links the plots to the run artifacts, or by relative file name', () => {
    const r = skinTypeReport();
    const local = renderEvaluationMarkdown(r);
    expect(local).toContain('- [Confusion matrix](confusion-matrix.png)');
    expect(local).toContain('- [Reliability diagram](reliability.png)');
    const remote = renderEvaluationMarkdown(r, { artifactUrl: 'https://github.com/o/r/actions/runs/1/artifacts/2' });
    expect(remote).toContain("[this run's artifacts](https://github.com/o/r/actions/runs/1/artifacts/2): Confusion matrix (confusion-matrix.png)");
    expect(remote).not.toContain('](confusion-matrix.png)');
    expect(renderEvaluationMarkdown(chainReport())).not.toContain('#### Plots');
  });

  it('escapes class names, slice values and gate names that contain markdown or HTML', () => {
    const r = skinTypeReport();
    const m = r.metrics as ReturnType<typeof classificationMetrics>;
    const evil = '<img src=x>&|*x*';
    m.classes = ['Dry', evil, 'Oily'];
    m.per_class = { Dry: m.per_class['Dry']!, [evil]: m.per_class['Normal']!, Oily: m.per_class['Oily']! };
    r.gates[0]!.name = 'min <f1> | macro';
    const md = renderEvaluationMarkdown(r);
    expect(md).not.toContain('<img');
    expect(md).not.toContain('<f1>');
    expect(md).toContain('&lt;img src=x&gt;&amp;\\|\\*x\\*');
    // Escaped pipes keep the confusion matrix at four columns.
    const rows = tableAfter(md, /^\| true ↓ \/ predicted → \|/);
    expect(rows.every((row) => row.length === 4)).toBe(true);
  });

  it.each(all)('never prints NaN, undefined, null or Infinity (%s)', (_, make) => {
    const md = renderEvaluationMarkdown(make(), { marker: evaluationMarker('x'), artifactUrl: 'https://example.invalid/a' });
    expect(md).not.toMatch(/NaN|undefined|null|Infinity|\[object/);
  });

  it('prints a dash for values that are missing or not finite', () => {
    const r = skinTypeReport();
    const m = r.metrics as ReturnType<typeof classificationMetrics>;
    m.roc_auc_ovr = null;
    m.log_loss = Number.NaN;
    m.per_class['Dry']!.roc_auc = null;
    r.comparison[0] = { metric: 'accuracy', challenger: Number.NaN, champion: null, delta: null, ci95: [Number.NaN, Number.POSITIVE_INFINITY] };
    const md = renderEvaluationMarkdown(r);
    expect(md).not.toMatch(/NaN|undefined|null|Infinity/);
    const rows = tableAfter(md, /^\| metric \| challenger \| champion \| Δ \| 95% CI \|$/);
    expect(rows[0]).toEqual(['accuracy', '—', '—', '—', '[—, —]']);
  });

  describe('the 79-class context-correction model', () => {
    const md = renderEvaluationMarkdown(contextCorrectionReport(), { marker: evaluationMarker('context-correction') });

    it('fits a GitHub comment without truncation', () => {
      expect(md.length).toBeLessThan(GITHUB_COMMENT_LIMIT);
      expect(md).not.toContain('Left out to keep this under');
    });

    it('shows the top confusions instead of a 79×79 table', () => {
      const widest = Math.max(...md.split('\n').map((l) => (l.match(/(?<!\\)\|/g) ?? []).length));
      expect(widest).toBeLessThan(12);
      const r = contextCorrectionReport();
      const m = r.metrics as ReturnType<typeof classificationMetrics>;
      let top = { i: 0, j: 0, count: -1 };
      m.confusion_matrix.forEach((row, i) => row.forEach((count, j) => {
        if (i !== j && count > top.count) top = { i, j, count };
      }));
      const rows = tableAfter(md, /^\| true \| predicted \| count \| share of true class \|$/);
      expect(rows).toHaveLength(25);
      expect(rows[0]!.slice(0, 3)).toEqual([m.classes[top.i], m.classes[top.j], String(top.count)]);
      const counts = rows.map((row) => Number(row[2]));
      expect(counts).toEqual([...counts].sort((a, b) => b - a));
    });
  });

  describe('the comment size cap', () => {
    /** skin-type with a `source` slice of 3,000 values: its folded table alone is far over the limit. */
    function hugeReport(): EvaluationReport {
      const r = skinTypeReport();
      const rand = rng(3);
      const values: Record<string, SliceValue> = {};
      const m = classificationMetrics(['Dry', 'Normal', 'Oily'], confusion(3, 3, 0.7, rand), rand);
      for (let i = 0; i < 3000; i++) values[`clinic-${String(i).padStart(4, '0')}-upload-batch`] = { n: m.n, metrics: m };
      r.slices['source'] = sliceOf('source', 'f1_macro', values);
      return r;
    }

    it('leaves out the largest folded section first, says so, and keeps the verdict and headline', () => {
      const md = renderEvaluationMarkdown(hugeReport(), { marker: evaluationMarker('skin-type') });
      expect(md.length).toBeLessThanOrEqual(DEFAULT_MAX_CHARS);
      expect(md.startsWith('<!-- skintwin:evaluation model=skin-type -->')).toBe(true);
      expect(md).toContain('**❌ fail**');
      expect(md).toContain('| metric | challenger | champion | Δ | 95% CI |');
      expect(md).toContain('<details><summary>Every source value: f1\\_macro and rows</summary>\n\n_Left out to keep this under');
      // Smaller folded sections survive.
      expect(md).toContain('| I | ');
      expect(md).toContain('| true ↓ / predicted → | Dry | Normal | Oily |');
      expect(md).toContain('_Truncated: this report was longer than 65,000 characters');
      // Too many values to chart.
      expect(md).not.toContain('x-axis "source"');
    });

    it('drops whole sections from the end when folding is not enough, leaving nothing open', () => {
      const small = renderEvaluationMarkdown(skinTypeReport(), { maxChars: 3000 });
      expect(small.length).toBeLessThanOrEqual(3000);
      expect(small).toContain('**❌ fail**');
      expect(small).toContain('| metric | challenger | champion | Δ | 95% CI |');
      expect(small).toMatch(/_Truncated: this report was longer than 3,000 characters[^\n]*\n$/);
      expect(small.split('```').length % 2).toBe(1);
      expect(small.split('<details').length).toBe(small.split('</details>').length);
      const kept = small.slice(0, small.indexOf('\n\n_Truncated'));
      expect(renderEvaluationMarkdown(skinTypeReport()).startsWith(kept.slice(0, 600))).toBe(true);
    });

    it('cuts at a line end only when the first section alone is too long', () => {
      const tiny = renderEvaluationMarkdown(skinTypeReport(), { maxChars: 220, marker: evaluationMarker('skin-type') });
      expect(tiny.length).toBeLessThanOrEqual(220);
      expect(tiny.startsWith('<!-- skintwin:evaluation model=skin-type -->\n')).toBe(true);
      expect(tiny).toContain('_Truncated');
    });

    it('is not applied to a report that fits', () => {
      const md = renderEvaluationMarkdown(skinTypeReport());
      expect(md).not.toMatch(/Truncated|Left out/);
    });
  });
});
