// evaluation.md, the PR comment and the job summary: one markdown rendering of an evaluation
// report, verdict first, then the few numbers that matter, details folded. Capped to GitHub's
// comment size: the largest folded sections are left out first, and the text says so.

import {
  CLASSIFICATION_HEADLINE,
  DETECTION_HEADLINE,
  LOWER_IS_BETTER,
  type ChainMetrics,
  type ClassificationMetrics,
  type DetectionMetrics,
  type EvaluationReport,
  type GateResult,
  type MetricDelta,
  type Metrics,
  type SliceReport,
} from '../evaluate/types.ts';
import { details, escapeMd, fmtCount, fmtMetric, fmtP, fmtPercent, fmtSigned, mdTable } from './format.ts';

/** GitHub rejects issue/PR comment bodies over 65,536 characters. */
export const GITHUB_COMMENT_LIMIT = 65_536;
/** What the rendering aims under by default: room for a caller's footer, and JS length counts UTF-16 units. */
export const DEFAULT_MAX_CHARS = 65_000;
/** Above this many classes the confusion matrix is shown as its top confusions, not a table. */
export const MAX_MATRIX_CLASSES = 15;
/** Off-diagonal cells listed when the matrix is too large for a table. */
export const TOP_CONFUSIONS = 25;
/** A slice key with more values than this gets no Mermaid chart (unreadable). */
export const MAX_CHART_VALUES = 30;

export interface MarkdownOptions {
  /** Hidden HTML comment put first, so a PR comment can be found again (see evaluationMarker). */
  marker?: string;
  /** Where the plots can be downloaded (the run's artifacts page); absent: relative file names. */
  artifactUrl?: string;
  /** Replaces the default title line. */
  title?: string;
  /** Length cap of the whole text (default DEFAULT_MAX_CHARS). */
  maxChars?: number;
}

/** The hidden marker of a model's evaluation comment. */
export function evaluationMarker(model: string): string {
  // `--` or `>` in a name would end the HTML comment early.
  return `<!-- skintwin:evaluation model=${model.replace(/[^A-Za-z0-9._@/-]|--/g, '_')} -->`;
}

/** The metrics a reviewer reads first; the other headline keys are folded. */
const PRIMARY: Record<EvaluationReport['task'], readonly string[]> = {
  classification: ['accuracy', 'balanced_accuracy', 'f1_macro', 'roc_auc_ovr', 'log_loss', 'ece'],
  detection: DETECTION_HEADLINE,
  chain: ['f1_macro', 'severity_agreement'],
};
const HEADLINE: Record<EvaluationReport['task'], readonly string[]> = {
  classification: CLASSIFICATION_HEADLINE,
  detection: DETECTION_HEADLINE,
  chain: ['f1_macro', 'severity_agreement'],
};

/** A section of the text; folded ones may have their body left out to fit the cap. */
type Block = string | { summary: string; body: string; open?: boolean };

const OMITTED =
  '_Left out to keep this under GitHub\'s 65,536-character comment limit: evaluation.md and evaluation.json in the run\'s artifacts have it in full._';

/** The markdown of an evaluation report (PR comment, job summary and evaluation.md). */
export function renderEvaluationMarkdown(report: EvaluationReport, o: MarkdownOptions = {}): string {
  const blocks = buildBlocks(report, o);
  return fitToLimit(blocks, o.maxChars ?? DEFAULT_MAX_CHARS);
}

function renderBlocks(blocks: Block[]): string {
  return (
    blocks
      .map((b) => (typeof b === 'string' ? b : details(b.summary, b.body, b.open)))
      .join('\n\n')
      .trimEnd() + '\n'
  );
}

/** Leave out the largest folded bodies first until the text fits; cut hard only as a last resort. */
function fitToLimit(blocks: Block[], max: number): string {
  let text = renderBlocks(blocks);
  if (text.length <= max) return text;
  const folded = blocks.filter((b): b is Exclude<Block, string> => typeof b !== 'string');
  folded.sort((a, b) => b.body.length - a.body.length);
  let truncated = false;
  for (const b of folded) {
    if (b.body === OMITTED) continue;
    b.body = OMITTED;
    truncated = true;
    text = renderBlocks(blocks);
    if (text.length <= max) break;
  }
  const note = `\n\n_Truncated: this report was longer than ${max.toLocaleString('en-US')} characters; evaluation.md in the run's artifacts has it in full._\n`;
  if (text.length > max) {
    // Drop whole sections from the end, so no table, fence or <details> is left open.
    const kept = [...blocks];
    while (kept.length > 1) {
      kept.pop();
      const shorter = renderBlocks(kept).trimEnd();
      if (shorter.length + note.length <= max) return shorter + note;
    }
    // Even the first section is too long: cut it at a line end.
    const room = Math.max(0, max - note.length);
    const cut = text.lastIndexOf('\n', room);
    return text.slice(0, cut > 0 ? cut : room) + note;
  }
  if (truncated && text.length + note.length <= max) text = text.trimEnd() + '\n' + note;
  return text;
}

function buildBlocks(r: EvaluationReport, o: MarkdownOptions): Block[] {
  const blocks: Block[] = [];
  const head: string[] = [];
  if (o.marker) head.push(o.marker);
  head.push(o.title ?? `### Evaluation: ${escapeMd(r.model)} (${r.task})`);
  blocks.push(head.join('\n'));
  blocks.push([verdictLine(r.gates, r.verdict), championLine(r), dataLine(r)].join('  \n'));

  blocks.push(...headlineBlocks(r));
  if (r.mcnemar) blocks.push(mcnemarLine(r.mcnemar));
  if (r.gates.length) blocks.push(gatesTable(r.gates));

  const sliceKeys = orderedSliceKeys(r.slices);
  if (sliceKeys.length) {
    blocks.push('#### Slices');
    blocks.push(sliceSummary(r, sliceKeys));
    for (const key of sliceKeys) {
      const slice = r.slices[key]!;
      const chart = sliceChart(slice);
      if (chart) blocks.push(chart);
    }
    for (const key of sliceKeys) {
      const slice = r.slices[key]!;
      blocks.push({ summary: `Every ${escapeMd(key)} value: ${escapeMd(slice.metric)} and rows`, body: sliceTable(slice, r.metrics) });
    }
  }

  const m = r.metrics;
  const champ = r.champion.metrics;
  if (m.task === 'classification') {
    blocks.push({ summary: `Per-class metrics (${m.classes.length} classes)`, body: perClassTable(m, champ?.task === 'classification' ? champ : undefined) });
    blocks.push(confusionBlock(m));
    blocks.push({ summary: `Calibration: ECE ${fmtMetric(m.ece)} (${m.reliability.length} confidence bins)`, body: reliabilityTable(m) });
  } else if (m.task === 'detection') {
    const apChart = mermaidBars('AP50 per class', 'class', 'AP50', m.classes, m.classes.map((c) => m.per_class[c]?.ap50 ?? 0));
    if (apChart) blocks.push(apChart);
    blocks.push({ summary: `Per-class AP (${m.classes.length} classes, IoU 0.5; precision/recall at confidence ${fmtMetric(m.confidence, 2)})`, body: perClassApTable(m, champ?.task === 'detection' ? champ : undefined), open: true });
  } else {
    blocks.push('#### Buckets');
    blocks.push(bucketTable(m));
  }

  const plots = plotsBlock(r, o.artifactUrl);
  if (plots) blocks.push(plots);
  blocks.push(`<sub>${escapeMd(r.createdAt)} · challenger ${escapeMd(r.challenger.onnx)} sha256 ${escapeMd(r.challenger.onnxSha256.slice(0, 12))}</sub>`);
  return blocks;
}

function gateNames(gates: GateResult[]): string {
  return gates.map((g) => `**${escapeMd(g.name)}**`).join(', ');
}

function verdictLine(gates: GateResult[], verdict: 'pass' | 'fail'): string {
  const failed = gates.filter((g) => g.status === 'fail');
  const skipped = gates.filter((g) => g.status === 'skipped');
  const passed = gates.filter((g) => g.status === 'pass');
  const skippedText = skipped.length ? `; skipped: ${gateNames(skipped)}` : '';
  if (verdict === 'fail') {
    const why = failed.length ? `failing gate${failed.length === 1 ? '' : 's'}: ${gateNames(failed)}` : 'the evaluation failed';
    return `**❌ fail** — ${why}${skippedText}`;
  }
  const what = gates.length ? `${passed.length} of ${gates.length} gate${gates.length === 1 ? '' : 's'} passed` : 'no gates configured';
  return `**✅ pass** — ${what}${skippedText}`;
}

function championLine(r: EvaluationReport): string {
  const c = r.champion;
  if (c.source === 'none') return `No comparison: ${escapeMd(c.reason)}`;
  const source = c.source === 'registry' ? 'registry' : 'base branch';
  const parts = [c.version ? `${escapeMd(c.version)}` : null, c.onnxSha256 ? `sha256 ${c.onnxSha256.slice(0, 12)}` : null].filter(Boolean);
  return `Champion (${source}): ${parts.length ? parts.join(', ') : 'unversioned'} — ${escapeMd(c.reason)}`;
}

function dataLine(r: EvaluationReport): string {
  return `Data: ${escapeMd(r.data.path)}, split ${escapeMd(r.data.split)}, ${fmtCount(r.data.rows)} rows`;
}

function metricValue(m: Metrics | ChainMetrics | undefined, key: string): number | null {
  if (!m) return null;
  const v = (m as unknown as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Whether the 95% interval excludes 0, and if so whether the change is an improvement. */
export function deltaSignificance(d: Pick<MetricDelta, 'metric' | 'ci95'>): 'better' | 'worse' | null {
  if (!d.ci95) return null;
  const [lo, hi] = d.ci95;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return null;
  const up = lo > 0;
  const down = hi < 0;
  if (!up && !down) return null;
  const lowerBetter = LOWER_IS_BETTER.has(d.metric);
  return up !== lowerBetter ? 'better' : 'worse';
}

function deltaCell(d: MetricDelta): string {
  const text = fmtSigned(d.delta);
  const sig = deltaSignificance(d);
  if (!sig || !d.ci95) return text;
  const arrow = d.ci95[0] > 0 ? '↑' : '↓';
  return `${sig === 'better' ? '🟢' : '🔴'} ${arrow} ${text}`;
}

function ciCell(d: MetricDelta): string {
  if (!d.ci95) return '—';
  return `[${fmtSigned(d.ci95[0])}, ${fmtSigned(d.ci95[1])}]`;
}

function headlineRows(r: EvaluationReport): MetricDelta[] {
  const byMetric = new Map(r.comparison.map((d) => [d.metric, d]));
  const keys = [...HEADLINE[r.task], ...r.comparison.map((d) => d.metric).filter((k) => !HEADLINE[r.task].includes(k))];
  return keys.map(
    (metric) =>
      byMetric.get(metric) ?? {
        metric,
        challenger: metricValue(r.metrics, metric),
        champion: metricValue(r.champion.metrics, metric),
        delta: null,
        ci95: null,
      },
  );
}

function headlineTable(rows: MetricDelta[]): string {
  return mdTable(
    ['metric', 'challenger', 'champion', 'Δ', '95% CI'],
    rows.map((d) => [
      `${escapeMd(d.metric)}${LOWER_IS_BETTER.has(d.metric) ? ' ↓' : ''}`,
      fmtMetric(d.challenger),
      fmtMetric(d.champion),
      deltaCell(d),
      ciCell(d),
    ]),
    ['l', 'r', 'r', 'r', 'l'],
  );
}

function valueTable(rows: MetricDelta[]): string {
  return mdTable(
    ['metric', 'value'],
    rows.map((d) => [`${escapeMd(d.metric)}${LOWER_IS_BETTER.has(d.metric) ? ' ↓' : ''}`, fmtMetric(d.challenger)]),
    ['l', 'r'],
  );
}

function headlineBlocks(r: EvaluationReport): Block[] {
  const rows = headlineRows(r);
  const primary = PRIMARY[r.task];
  const first = rows.filter((d) => primary.includes(d.metric));
  const rest = rows.filter((d) => !primary.includes(d.metric));
  // Without a champion the comparison columns would be all dashes.
  const compared = r.champion.source !== 'none' || r.comparison.length > 0;
  const table = compared ? headlineTable : valueTable;
  const legend =
    '<sub>Δ = challenger − champion. 🟢/🔴 with ↑/↓ only where the 95% interval excludes 0 (🟢 better, 🔴 worse); metrics marked ↓ are better lower.</sub>';
  const blocks: Block[] = [compared ? table(first) + '\n\n' + legend : table(first)];
  if (rest.length) blocks.push({ summary: `All headline metrics (${rows.length})`, body: table(rows) });
  return blocks;
}

function mcnemarLine(m: NonNullable<EvaluationReport['mcnemar']>): string {
  const significant = m.pValue < 0.05;
  const who =
    m.challengerOnly === m.championOnly ? 'neither is better' : m.challengerOnly > m.championOnly ? 'challenger better' : 'champion better';
  const verdict = significant ? `significant at 0.05: ${who}` : 'no significant difference at 0.05';
  return `McNemar on accuracy: challenger alone right on ${fmtCount(m.challengerOnly)} rows, champion alone on ${fmtCount(m.championOnly)}; statistic ${fmtMetric(m.statistic, 3)}, p ${fmtP(m.pValue).startsWith('<') ? fmtP(m.pValue) : `= ${fmtP(m.pValue)}`} (${verdict}).`;
}

const GATE_STATUS: Record<GateResult['status'], string> = { pass: '✅ pass', fail: '❌ fail', skipped: '⏭️ skipped' };

function gatesTable(gates: GateResult[]): string {
  const order: Record<GateResult['status'], number> = { fail: 0, skipped: 1, pass: 2 };
  const sorted = [...gates].sort((a, b) => order[a.status] - order[b.status]);
  return mdTable(
    ['gate', 'threshold', 'value', 'status', 'note'],
    sorted.map((g) => [escapeMd(g.name), fmtMetric(g.threshold), fmtMetric(g.value), GATE_STATUS[g.status], g.status === 'pass' ? '' : escapeMd(g.message)]),
    ['l', 'r', 'r', 'l', 'l'],
  );
}

/** Skin tone first: a model that fails darker skin must be the first thing seen. */
function orderedSliceKeys(slices: Record<string, SliceReport>): string[] {
  const keys = Object.keys(slices);
  const rank = (k: string) => (/tone|fitzpatrick/i.test(k) ? 0 : /source/i.test(k) ? 1 : 2);
  return keys.map((k, i) => ({ k, i })).sort((a, b) => rank(a.k) - rank(b.k) || a.i - b.i).map((x) => x.k);
}

function sliceScore(v: { metrics: Metrics | null }, metric: string): number | null {
  return v.metrics ? metricValue(v.metrics, metric) : null;
}

function sliceSummary(r: EvaluationReport, keys: string[]): string {
  const rows = keys.map((key) => {
    const s = r.slices[key]!;
    const values = Object.entries(s.values);
    const empty = values.filter(([, v]) => !v.metrics || v.n === 0).map(([name]) => name);
    const gateFailed = r.gates.some((g) => g.kind === 'slice-gap' && g.status === 'fail' && g.name.endsWith(` ${key}`));
    const worst = s.worst ? `${gateFailed ? '⚠️ ' : ''}**${escapeMd(s.worst.value)}**: ${fmtMetric(s.worst.score)} (n=${fmtCount(s.values[s.worst.value]?.n)})` : '—';
    const best = s.best ? `${escapeMd(s.best.value)}: ${fmtMetric(s.best.score)} (n=${fmtCount(s.values[s.best.value]?.n)})` : '—';
    const withRows = `${values.length - empty.length} of ${values.length}${empty.length ? ` (no rows: ${empty.slice(0, 5).map(escapeMd).join(', ')}${empty.length > 5 ? ', …' : ''})` : ''}`;
    return [escapeMd(key), escapeMd(s.metric), worst, best, fmtMetric(s.gap), withRows];
  });
  return mdTable(['slice', 'metric', 'worst', 'best', 'gap', 'values with rows'], rows, ['l', 'l', 'l', 'l', 'r', 'l']);
}

/** Mermaid label: inside double quotes, which it cannot escape. */
function mermaidLabel(text: string, max = 40): string {
  return `"${text.replace(/["\\]/g, "'").replace(/[\r\n]+/g, ' ').slice(0, max)}"`;
}

/** A Mermaid bar chart (optionally with a line), or null when there is nothing to draw or too much. */
function mermaidBars(title: string, xLabel: string, yLabel: string, labels: string[], bars: number[], line?: number[]): string | null {
  if (!labels.length || labels.length > MAX_CHART_VALUES) return null;
  // Mermaid takes numbers only: a missing value is drawn as 0 rather than breaking the chart.
  bars = bars.map((v) => (Number.isFinite(v) ? v : 0));
  line = line?.map((v) => (Number.isFinite(v) ? v : 0));
  const top = Math.max(1, Math.ceil(Math.max(...bars, ...(line ?? []))));
  return [
    '```mermaid',
    'xychart-beta',
    `    title ${mermaidLabel(title, 80)}`,
    `    x-axis ${mermaidLabel(xLabel)} [${labels.map((l) => mermaidLabel(l)).join(', ')}]`,
    `    y-axis ${mermaidLabel(yLabel)} 0 --> ${top}`,
    `    bar [${bars.map((v) => fmtMetric(v)).join(', ')}]`,
    ...(line ? [`    line [${line.map((v) => fmtMetric(v)).join(', ')}]`] : []),
    '```',
  ].join('\n');
}

function sliceChart(s: SliceReport): string | null {
  const points = Object.entries(s.values)
    .map(([name, v]) => ({ name, score: sliceScore(v, s.metric) }))
    .filter((p): p is { name: string; score: number } => p.score !== null);
  const worst = s.worst ? `, worst ${s.worst.value}` : '';
  return mermaidBars(`${s.metric} per ${s.key}${worst}`, s.key, s.metric, points.map((p) => p.name), points.map((p) => p.score));
}

/** Further metrics shown per slice value, beside the primary one. */
const SLICE_EXTRAS: Record<'classification' | 'detection', readonly string[]> = {
  classification: ['accuracy', 'balanced_accuracy', 'recall_macro', 'ece'],
  detection: ['map50_95', 'precision', 'recall'],
};

function sliceTable(s: SliceReport, overall: Metrics | ChainMetrics): string {
  const sample = Object.values(s.values).find((v) => v.metrics)?.metrics;
  const task = sample?.task ?? (overall.task === 'chain' ? null : overall.task);
  const extras = task ? SLICE_EXTRAS[task].filter((k) => k !== s.metric) : [];
  const best = s.best?.score ?? null;
  const rows = Object.entries(s.values).map(([name, v]) => {
    const score = sliceScore(v, s.metric);
    const tag = s.worst?.value === name ? ' (worst)' : s.best?.value === name ? ' (best)' : '';
    if (score === null) return [escapeMd(name), fmtCount(v.n), 'no rows', '—', ...extras.map(() => '—')];
    return [
      `${escapeMd(name)}${tag}`,
      fmtCount(v.n),
      fmtMetric(score),
      best === null ? '—' : fmtSigned(score - best),
      ...extras.map((k) => fmtMetric(sliceScore(v, k))),
    ];
  });
  const overallRow = ['_all rows_', fmtCount(overall.n), fmtMetric(metricValue(overall, s.metric)), '', ...extras.map((k) => fmtMetric(metricValue(overall, k)))];
  return mdTable(
    ['value', 'n', escapeMd(s.metric), 'vs best', ...extras.map((k) => `${escapeMd(k)}${LOWER_IS_BETTER.has(k) ? ' ↓' : ''}`)],
    [...rows, overallRow],
    ['l', 'r', 'r', 'r', ...extras.map(() => 'r' as const)],
  );
}

function perClassTable(m: ClassificationMetrics, champ: ClassificationMetrics | undefined): string {
  const rows = m.classes.map((c) => {
    const s = m.per_class[c];
    const champF1 = champ?.per_class[c]?.f1;
    return [
      escapeMd(c),
      fmtMetric(s?.precision),
      fmtMetric(s?.recall),
      fmtMetric(s?.f1),
      ...(champ ? [fmtMetric(champF1), s && champF1 !== undefined ? fmtSigned(s.f1 - champF1) : '—'] : []),
      fmtCount(s?.support),
      fmtMetric(s?.roc_auc),
    ];
  });
  return mdTable(
    ['class', 'precision', 'recall', 'f1', ...(champ ? ['champion f1', 'Δ f1'] : []), 'support', 'ROC-AUC'],
    rows,
    ['l', 'r', 'r', 'r', ...(champ ? (['r', 'r'] as const) : []), 'r', 'r'],
  );
}

function confusionBlock(m: ClassificationMetrics): Block {
  const k = m.classes.length;
  if (k <= MAX_MATRIX_CLASSES) {
    const rows = m.classes.map((c, i) => [
      `**${escapeMd(c)}**`,
      ...m.classes.map((_, j) => {
        const v = fmtCount(m.confusion_matrix[i]?.[j]);
        return i === j ? `**${v}**` : v;
      }),
    ]);
    const table = mdTable(['true ↓ / predicted →', ...m.classes.map(escapeMd)], rows, ['l', ...m.classes.map(() => 'r' as const)]);
    return { summary: `Confusion matrix (rows: true class, columns: predicted)`, body: table, open: true };
  }
  const cells: { i: number; j: number; count: number }[] = [];
  m.confusion_matrix.forEach((row, i) =>
    row.forEach((count, j) => {
      if (i !== j && count > 0) cells.push({ i, j, count });
    }),
  );
  cells.sort((a, b) => b.count - a.count || a.i - b.i || a.j - b.j);
  const rowTotals = m.confusion_matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const top = cells.slice(0, TOP_CONFUSIONS);
  const body =
    `${k} classes: too many for a table, so the ${top.length} largest confusions are listed (the full matrix is in evaluation.json and the confusion-matrix plot).\n\n` +
    mdTable(
      ['true', 'predicted', 'count', 'share of true class'],
      top.map((c) => [escapeMd(m.classes[c.i] ?? String(c.i)), escapeMd(m.classes[c.j] ?? String(c.j)), fmtCount(c.count), fmtPercent(rowTotals[c.i] ? c.count / rowTotals[c.i]! : null)]),
      ['l', 'l', 'r', 'r'],
    );
  return { summary: `Top confusions (${k} classes)`, body };
}

function reliabilityTable(m: ClassificationMetrics): string {
  const bins = m.reliability.filter((b) => b.count > 0);
  if (!bins.length) return '_No rows._';
  const chart = mermaidBars(
    'Accuracy (bars) vs mean confidence (line) per bin',
    'confidence bin',
    'accuracy',
    bins.map((b) => `${fmtMetric(b.lo, 2)}–${fmtMetric(b.hi, 2)}`),
    bins.map((b) => b.accuracy),
    bins.map((b) => b.confidence),
  );
  return (chart ? chart + '\n\n' : '') + mdTable(
    ['confidence bin', 'rows', 'mean confidence', 'accuracy', 'gap'],
    bins.map((b) => [`${fmtMetric(b.lo, 3)}–${fmtMetric(b.hi, 3)}`, fmtCount(b.count), fmtMetric(b.confidence), fmtMetric(b.accuracy), fmtSigned(b.accuracy - b.confidence)]),
    ['l', 'r', 'r', 'r', 'r'],
  );
}

function perClassApTable(m: DetectionMetrics, champ: DetectionMetrics | undefined): string {
  const rows = m.classes.map((c) => {
    const s = m.per_class[c];
    const champAp = champ?.per_class[c]?.ap50;
    return [
      escapeMd(c),
      fmtMetric(s?.ap50),
      ...(champ ? [fmtMetric(champAp), s && champAp !== undefined ? fmtSigned(s.ap50 - champAp) : '—'] : []),
      fmtMetric(s?.ap50_95),
      fmtMetric(s?.precision),
      fmtMetric(s?.recall),
      fmtMetric(s?.f1),
      fmtCount(s?.support),
      fmtCount(s?.predictions),
    ];
  });
  return mdTable(
    ['class', 'AP50', ...(champ ? ['champion AP50', 'Δ AP50'] : []), 'AP50-95', 'precision', 'recall', 'f1', 'boxes', 'predicted'],
    rows,
    ['l', 'r', ...(champ ? (['r', 'r'] as const) : []), 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function bucketTable(m: ChainMetrics): string {
  return mdTable(
    ['bucket', 'precision', 'recall', 'f1', 'support', 'severity agreement'],
    Object.entries(m.buckets).map(([name, b]) => [escapeMd(name), fmtMetric(b.precision), fmtMetric(b.recall), fmtMetric(b.f1), fmtCount(b.support), fmtMetric(b.severity_agreement)]),
    ['l', 'r', 'r', 'r', 'r', 'r'],
  );
}

function plotsBlock(r: EvaluationReport, artifactUrl: string | undefined): string | null {
  if (!r.plots.length) return null;
  if (artifactUrl) {
    const names = r.plots.map((p) => `${escapeMd(p.title)} (${escapeMd(p.file)})`).join(', ');
    return `#### Plots\n\nPNG and SVG in [this run's artifacts](${linkTarget(artifactUrl)}): ${names}.`;
  }
  return `#### Plots\n\n${r.plots.map((p) => `- [${escapeMd(p.title)}](${linkTarget(p.file)})`).join('\n')}`;
}

/** A markdown link target: parentheses and spaces would end or break it. */
function linkTarget(url: string): string {
  return url.replace(/[()\s<>]/g, (c) => encodeURIComponent(c));
}
