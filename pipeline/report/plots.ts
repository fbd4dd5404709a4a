// Evaluation plots as hand-written SVG (no plotting dependency, same report → same bytes) and
// PNG rendered locally by sharp (librsvg): confusion-matrix heatmap, reliability diagram,
// precision-recall curves and per-slice bars. Colours are the Okabe-Ito colour-blind-safe set
// and a viridis ramp.

import { join } from 'node:path';
import type { ClassificationMetrics, DetectionMetrics, EvaluationReport, Metrics, SliceReport } from '../evaluate/types.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { escapeXml, fmtMetric } from './format.ts';

/** Okabe & Ito (2008): distinguishable with every common colour-vision deficiency. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'] as const;
/** Line styles that tell curves apart once the palette repeats. */
const DASHES = ['', '6 3', '2 2', '8 3 2 3'] as const;
const HIGHLIGHT = '#D55E00';
const NORMAL = '#0072B2';
const AXIS = '#333333';
const GRID = '#dddddd';
const FONT = 'DejaVu Sans, Verdana, Arial, sans-serif';

/** Viridis at 9 stops: perceptually uniform, readable in grey and by colour-blind readers. */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

function hexToRgb(hex: string): [number, number, number] {
  const v = Number.parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** Viridis colour of t in [0, 1], and whether text on it should be white. */
export function viridis(t: number): { fill: string; light: boolean } {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = hexToRgb(VIRIDIS[i]!);
  const b = hexToRgb(VIRIDIS[i + 1]!);
  const rgb = a.map((c, k) => Math.round(c + (b[k]! - c) * f));
  const hex = '#' + rgb.map((c) => c.toString(16).padStart(2, '0')).join('');
  const luminance = (0.2126 * rgb[0]! + 0.7152 * rgb[1]! + 0.0722 * rgb[2]!) / 255;
  return { fill: hex, light: luminance < 0.5 };
}

/** A coordinate with at most 2 decimals: stable text, small files. */
function n(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

function text(x: number, y: number, content: string, o: { size?: number; anchor?: 'start' | 'middle' | 'end'; fill?: string; weight?: 'bold'; rotate?: number } = {}): string {
  const attrs = [`x="${n(x)}"`, `y="${n(y)}"`, `font-size="${o.size ?? 12}"`];
  if (o.anchor && o.anchor !== 'start') attrs.push(`text-anchor="${o.anchor}"`);
  if (o.fill) attrs.push(`fill="${o.fill}"`);
  if (o.weight) attrs.push(`font-weight="${o.weight}"`);
  if (o.rotate) attrs.push(`transform="rotate(${o.rotate} ${n(x)} ${n(y)})"`);
  return `<text ${attrs.join(' ')}>${escapeXml(content)}</text>`;
}

function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Shorten a label to `max` characters so it cannot run over its neighbours. */
function clip(label: string, max: number): string {
  return label.length <= max ? label : label.slice(0, Math.max(1, max - 1)) + '…';
}

/** Axes with ticks at 0, 0.2, …, 1 over a square-ish plot area. */
function unitAxes(x0: number, y0: number, w: number, h: number, xLabel: string, yLabel: string, xTicks = true): string[] {
  const out: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const t = i / 5;
    const y = y0 + h - t * h;
    out.push(`<line x1="${n(x0)}" y1="${n(y)}" x2="${n(x0 + w)}" y2="${n(y)}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(text(x0 - 6, y + 4, t.toFixed(1), { size: 11, anchor: 'end', fill: AXIS }));
    if (xTicks) {
      const x = x0 + t * w;
      out.push(`<line x1="${n(x)}" y1="${n(y0 + h)}" x2="${n(x)}" y2="${n(y0 + h + 4)}" stroke="${AXIS}"/>`);
      out.push(text(x, y0 + h + 17, t.toFixed(1), { size: 11, anchor: 'middle', fill: AXIS }));
    }
  }
  out.push(`<rect x="${n(x0)}" y="${n(y0)}" width="${n(w)}" height="${n(h)}" fill="none" stroke="${AXIS}" stroke-width="1"/>`);
  out.push(text(x0 + w / 2, y0 + h + 36, xLabel, { size: 13, anchor: 'middle', fill: AXIS }));
  out.push(text(x0 - 40, y0 + h / 2, yLabel, { size: 13, anchor: 'middle', fill: AXIS, rotate: -90 }));
  return out;
}

/**
 * Confusion-matrix heatmap: rows true, columns predicted, colour = share of the true class
 * (so rare classes are as visible as common ones), the count written in each cell that fits it.
 */
export function confusionMatrixSvg(m: ClassificationMetrics, o: { title?: string } = {}): string {
  const k = m.classes.length;
  const cell = k <= 6 ? 64 : k <= 12 ? 44 : k <= 25 ? 24 : Math.max(6, Math.floor(760 / k));
  const showCounts = cell >= 22;
  const showLabels = cell >= 9;
  const labelChars = Math.max(4, Math.min(18, Math.floor(cell >= 40 ? 18 : 12)));
  const labelSpace = showLabels ? Math.min(130, 8 + 7 * Math.min(labelChars, Math.max(1, ...m.classes.map((c) => c.length)))) : 20;
  const grid = cell * k;
  const legendW = 70;
  const needed = labelSpace + 34 + grid + legendW + 20;
  const width = Math.max(480, needed);
  // Centred when the title needs more width than the grid.
  const left = labelSpace + 34 + Math.floor((width - needed) / 2);
  const top = 56;
  const height = top + grid + labelSpace + 40;
  const title = o.title ?? `Confusion matrix (n = ${m.n})`;
  const body: string[] = [text(width / 2, 24, title, { size: 16, anchor: 'middle', weight: 'bold' })];
  body.push(text(width / 2, 44, 'rows: true class · columns: predicted · colour: share of the true class', { size: 11, anchor: 'middle', fill: AXIS }));
  const rowTotals = m.confusion_matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const fontSize = Math.min(14, Math.max(8, Math.floor(cell / 3.2)));
  // Empty cells share one background rect: a sparse 79×79 matrix stays a small file.
  body.push(`<rect x="${left}" y="${top}" width="${grid}" height="${grid}" fill="${viridis(0).fill}"/>`);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const count = m.confusion_matrix[i]?.[j] ?? 0;
      if (count === 0 && !showCounts) continue;
      const share = rowTotals[i] ? count / rowTotals[i]! : 0;
      const { fill, light } = viridis(share);
      const x = left + j * cell;
      const y = top + i * cell;
      body.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}"${cell >= 10 ? ' stroke="#ffffff" stroke-width="0.5"' : ''}/>`);
      if (showCounts) {
        body.push(text(x + cell / 2, y + cell / 2 + fontSize / 3, String(count), { size: fontSize, anchor: 'middle', fill: light ? '#ffffff' : '#000000', ...(i === j ? { weight: 'bold' as const } : {}) }));
      }
    }
  }
  if (showLabels) {
    const size = Math.min(12, Math.max(7, cell - 2));
    m.classes.forEach((c, i) => {
      body.push(text(left - 6, top + i * cell + cell / 2 + size / 3, clip(c, labelChars), { size, anchor: 'end' }));
      const x = left + i * cell + cell / 2 + size / 3;
      body.push(text(x, top + grid + 8, clip(c, labelChars), { size, anchor: 'end', rotate: -45 }));
    });
  }
  body.push(text(left - labelSpace - 20, top + grid / 2, 'true class', { size: 13, anchor: 'middle', fill: AXIS, rotate: -90 }));
  body.push(text(left + grid / 2, height - 10, 'predicted class', { size: 13, anchor: 'middle', fill: AXIS }));
  // Colour legend: the share scale from 0 to 1.
  const lx = left + grid + 24;
  const lh = Math.min(grid, 200);
  for (let s = 0; s < 20; s++) {
    body.push(`<rect x="${lx}" y="${n(top + lh - ((s + 1) * lh) / 20)}" width="14" height="${n(lh / 20 + 0.5)}" fill="${viridis((s + 0.5) / 20).fill}"/>`);
  }
  body.push(text(lx + 18, top + lh, '0', { size: 10, fill: AXIS }));
  body.push(text(lx + 18, top + 9, '1', { size: 10, fill: AXIS }));
  return svgDocument(width, height, title, body);
}

/** Reliability diagram: accuracy per confidence bin against the diagonal, with the rows per bin. */
export function reliabilitySvg(m: ClassificationMetrics): string {
  const width = 560;
  const height = 520;
  const x0 = 70;
  const y0 = 50;
  const w = 440;
  const h = 380;
  const title = `Reliability diagram (ECE ${fmtMetric(m.ece)})`;
  const body: string[] = [text(width / 2, 26, title, { size: 16, anchor: 'middle', weight: 'bold' })];
  body.push(...unitAxes(x0, y0, w, h, 'confidence (top-1 probability)', 'accuracy'));
  for (const b of m.reliability) {
    if (b.count <= 0) continue;
    const bx = x0 + b.lo * w + 1;
    const bw = Math.max(1, (b.hi - b.lo) * w - 2);
    const bh = b.accuracy * h;
    body.push(`<rect x="${n(bx)}" y="${n(y0 + h - bh)}" width="${n(bw)}" height="${n(bh)}" fill="${NORMAL}" fill-opacity="0.85"/>`);
    // Where a perfectly calibrated bin would reach: the bin's mean confidence.
    const cy = y0 + h - b.confidence * h;
    body.push(`<line x1="${n(bx)}" y1="${n(cy)}" x2="${n(bx + bw)}" y2="${n(cy)}" stroke="${HIGHLIGHT}" stroke-width="2"/>`);
    body.push(text(bx + bw / 2, Math.min(y0 + h - bh, cy) - 4, String(b.count), { size: 10, anchor: 'middle', fill: AXIS }));
  }
  body.push(`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0}" stroke="#000000" stroke-width="1.5" stroke-dasharray="5 4"/>`);
  const ly = height - 30;
  body.push(`<rect x="${x0}" y="${ly - 9}" width="14" height="10" fill="${NORMAL}"/>`, text(x0 + 20, ly, 'accuracy (label: rows in bin)', { size: 11 }));
  body.push(`<line x1="${x0 + 215}" y1="${ly - 4}" x2="${x0 + 235}" y2="${ly - 4}" stroke="${HIGHLIGHT}" stroke-width="2"/>`, text(x0 + 240, ly, 'mean confidence', { size: 11 }));
  body.push(`<line x1="${x0 + 345}" y1="${ly - 4}" x2="${x0 + 365}" y2="${ly - 4}" stroke="#000000" stroke-dasharray="5 4"/>`, text(x0 + 370, ly, 'perfect', { size: 11 }));
  return svgDocument(width, height, title, body);
}

/** Precision-recall curves (IoU 0.5), one line per class, AP in the legend. */
export function prCurvesSvg(m: DetectionMetrics): string {
  const curves = m.classes.filter((c) => Array.isArray(m.pr_curves[c]) && m.pr_curves[c]!.length > 1);
  const legendW = 210;
  const x0 = 70;
  const y0 = 50;
  const w = 420;
  const h = 380;
  const width = x0 + w + 20 + legendW;
  const height = Math.max(500, y0 + 24 + curves.length * 18);
  const title = `Precision-recall curves, IoU 0.5 (mAP50 ${fmtMetric(m.map50)})`;
  const body: string[] = [text(width / 2, 26, title, { size: 16, anchor: 'middle', weight: 'bold' })];
  body.push(...unitAxes(x0, y0, w, h, 'recall', 'precision'));
  curves.forEach((c, i) => {
    const ys = m.pr_curves[c]!;
    const last = ys.length - 1;
    const points = ys.map((p, r) => `${n(x0 + (r / last) * w)},${n(y0 + h - (Number.isFinite(p) ? p : 0) * h)}`).join(' ');
    const colour = PALETTE[i % PALETTE.length]!;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    body.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"${dashAttr}/>`);
    const ly = y0 + 10 + i * 18;
    const lx = x0 + w + 20;
    body.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${colour}" stroke-width="2.5"${dashAttr}/>`);
    body.push(text(lx + 30, ly, `${clip(c, 18)} (AP ${fmtMetric(m.per_class[c]?.ap50, 3)})`, { size: 11 }));
  });
  if (!curves.length) body.push(text(x0 + w / 2, y0 + h / 2, 'no class has ground truth', { size: 14, anchor: 'middle', fill: AXIS }));
  return svgDocument(width, height, title, body);
}

function metricOf(m: Metrics | null, key: string): number | null {
  if (!m) return null;
  const v = (m as unknown as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Bars drawn at most; beyond, the lowest-scoring values. */
export const MAX_BARS = 40;

/** One bar per slice value with its n; the worst value in the highlight colour; empty values marked. */
export function sliceBarsSvg(slice: SliceReport): string {
  const all = Object.entries(slice.values);
  // Many values (data sources can be hundreds): the lowest scores are the ones to see.
  const entries =
    all.length <= MAX_BARS
      ? all
      : all
          .filter(([, v]) => metricOf(v.metrics, slice.metric) !== null)
          .sort(([a, x], [b, y]) => metricOf(x.metrics, slice.metric)! - metricOf(y.metrics, slice.metric)! || (a < b ? -1 : a > b ? 1 : 0))
          .slice(0, MAX_BARS);
  const barW = entries.length <= 8 ? 56 : entries.length <= 20 ? 30 : 14;
  const gap = Math.round(barW / 3);
  const x0 = 70;
  const y0 = 56;
  const h = 300;
  const used = entries.length * (barW + gap) + gap;
  const w = Math.max(360, used);
  const offset = Math.floor((w - used) / 2);
  const width = x0 + w + 30;
  const narrow = barW < 30;
  // Narrow bars have no room for n under them: it joins the slanted label.
  const labels = entries.map(([value, v]) => (narrow ? `${clip(value, 12)} n=${v.n}` : clip(value, 14)));
  const longest = Math.max(1, ...labels.map((l) => l.length));
  const height = y0 + h + (narrow ? 20 : 34) + Math.ceil(5.5 * longest) + 36;
  const title = `${slice.metric} per ${slice.key}${entries.length < all.length ? ` (the ${entries.length} lowest of ${all.length} values)` : ''}`;
  const body: string[] = [text(width / 2, 24, title, { size: 16, anchor: 'middle', weight: 'bold' })];
  const sub = slice.worst && slice.best ? `worst ${slice.worst.value} (${fmtMetric(slice.worst.score)}), best ${slice.best.value} (${fmtMetric(slice.best.score)}), gap ${fmtMetric(slice.gap)}` : 'no slice value has rows';
  body.push(text(width / 2, 43, clip(sub, 90), { size: 11, anchor: 'middle', fill: AXIS }));
  body.push(...unitAxes(x0, y0, w, h, '', slice.metric, false));
  entries.forEach(([value, v], i) => {
    const x = x0 + offset + gap + i * (barW + gap);
    const score = metricOf(v.metrics, slice.metric);
    const worst = slice.worst?.value === value;
    if (score === null) {
      body.push(`<rect x="${x}" y="${y0 + h - 2}" width="${barW}" height="2" fill="${GRID}"/>`);
      body.push(text(x + barW / 2, y0 + h - 8, 'no rows', { size: 10, anchor: 'middle', fill: AXIS, rotate: barW < 40 ? -90 : 0 }));
    } else {
      const bh = Math.max(0, Math.min(1, score)) * h;
      body.push(`<rect x="${x}" y="${n(y0 + h - bh)}" width="${barW}" height="${n(bh)}" fill="${worst ? HIGHLIGHT : NORMAL}"/>`);
      if (barW >= 30) body.push(text(x + barW / 2, y0 + h - bh - 5, fmtMetric(score, 3), { size: 11, anchor: 'middle', ...(worst ? { weight: 'bold' as const } : {}) }));
    }
    if (!narrow) body.push(text(x + barW / 2, y0 + h + 14, `n=${v.n}`, { size: 10, anchor: 'middle', fill: AXIS }));
    body.push(text(x + barW / 2 + 4, y0 + h + (narrow ? 10 : 24), labels[i]!, { size: narrow ? 10 : 11, anchor: 'end', rotate: -45, ...(worst ? { weight: 'bold' as const, fill: HIGHLIGHT } : {}) }));
  });
  const ly = height - 12;
  body.push(`<rect x="${x0}" y="${ly - 9}" width="12" height="10" fill="${HIGHLIGHT}"/>`, text(x0 + 18, ly, 'worst value', { size: 11 }));
  body.push(`<rect x="${x0 + 110}" y="${ly - 9}" width="12" height="10" fill="${NORMAL}"/>`, text(x0 + 128, ly, 'other values', { size: 11 }));
  return svgDocument(width, height, title, body);
}

/** The SVG's own width attribute (the size it was drawn for). */
function svgWidth(svg: string): number {
  const match = /<svg[^>]*\swidth="(\d+(?:\.\d+)?)"/.exec(svg);
  return match ? Number(match[1]) : 800;
}

/**
 * Render SVG to PNG with sharp (librsvg), `width` pixels wide (default: the SVG's own width),
 * rasterised at that size rather than scaled up. Palette PNG keeps plots well under 100 KB.
 */
export async function svgToPng(svg: string, width?: number): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const own = svgWidth(svg);
  const target = Math.max(16, Math.round(width ?? own));
  const density = Math.min(2400, Math.max(1, (72 * target) / own));
  return sharp(Buffer.from(svg), { density })
    .resize({ width: target })
    .flatten({ background: '#ffffff' })
    .png({ compressionLevel: 9, palette: true, effort: 7 })
    .toBuffer();
}

/** A file-name-safe plot name. */
function plotName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'slice';
}

/**
 * Every plot the report calls for, written as <name>.svg and <name>.png in `dir` (atomically).
 * Returns the PNGs' file names relative to `dir`, for `EvaluationReport.plots`.
 */
export async function writeEvaluationPlots(report: EvaluationReport, dir: string): Promise<{ name: string; file: string; title: string }[]> {
  const plots: { name: string; title: string; svg: string }[] = [];
  const m = report.metrics;
  if (m.task === 'classification') {
    plots.push({ name: 'confusion-matrix', title: 'Confusion matrix', svg: confusionMatrixSvg(m) });
    plots.push({ name: 'reliability', title: 'Reliability diagram', svg: reliabilitySvg(m) });
  } else if (m.task === 'detection') {
    plots.push({ name: 'pr-curves', title: 'Precision-recall curves', svg: prCurvesSvg(m) });
  }
  const used = new Set(plots.map((p) => p.name));
  for (const [key, slice] of Object.entries(report.slices)) {
    let name = `slice-${plotName(key)}`;
    for (let i = 2; used.has(name); i++) name = `slice-${plotName(key)}-${i}`;
    used.add(name);
    plots.push({ name, title: `${slice.metric} per ${key}`, svg: sliceBarsSvg(slice) });
  }
  const written: { name: string; file: string; title: string }[] = [];
  for (const p of plots) {
    await writeFileAtomic(join(dir, `${p.name}.svg`), p.svg);
    await writeFileAtomic(join(dir, `${p.name}.png`), await svgToPng(p.svg));
    written.push({ name: p.name, file: `${p.name}.png`, title: p.title });
  }
  return written;
}
