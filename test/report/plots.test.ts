import { describe, it, expect } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_BARS,
  PALETTE,
  confusionMatrixSvg,
  prCurvesSvg,
  reliabilitySvg,
  sliceBarsSvg,
  svgToPng,
  writeEvaluationPlots,
} from '../../pipeline/report/plots.ts';
import type { ClassificationMetrics, DetectionMetrics, EvaluationReport, SliceValue } from '../../pipeline/evaluate/types.ts';
import { chainReport, contextCorrectionReport, detectionReport, skinTypeReport, sliceOf } from './fixtures.ts';
import { xmlProblems } from './xml.ts';

const classification = (r: EvaluationReport) => r.metrics as ClassificationMetrics;
const detection = (r: EvaluationReport) => r.metrics as DetectionMetrics;

/** PNG width and height from the IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

/** Every SVG the fixtures produce, named. */
function allSvgs(): [string, string][] {
  const s = skinTypeReport();
  const d = detectionReport();
  const c = contextCorrectionReport();
  return [
    ['confusion 3 classes', confusionMatrixSvg(classification(s))],
    ['confusion 79 classes', confusionMatrixSvg(classification(c))],
    ['reliability', reliabilitySvg(classification(s))],
    ['pr curves', prCurvesSvg(detection(d))],
    ['slice bars skin tone (empty VI)', sliceBarsSvg(s.slices['skin_tone']!)],
    ['slice bars detection (empty I)', sliceBarsSvg(d.slices['skin_tone']!)],
  ];
}

describe('plots', () => {
  it.each(allSvgs())('%s is well-formed XML', (_, svg) => {
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  });

  it('the well-formedness check catches what an unescaped name would do', () => {
    expect(xmlProblems('<svg><text>a < b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a & b</text></svg>')).toEqual(['bare & at 13']);
    expect(xmlProblems('<svg><g></svg>')).not.toEqual([]);
  });

  it('the same report gives the same bytes', () => {
    const a = allSvgs();
    const b = allSvgs();
    expect(b).toEqual(a);
  });

  it('escapes class names with <, & and >', () => {
    const r = skinTypeReport();
    const m = classification(r);
    m.classes = ['<Dry & "dusty">', 'Normal', 'Oily'];
    const svg = confusionMatrixSvg(m, { title: 'a <b> & c' });
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg).toContain('&lt;Dry &amp; &quot;dusty&quot;&gt;');
    expect(svg).toContain('<title>a &lt;b&gt; &amp; c</title>');
    const d = detection(detectionReport());
    const evil = 'Acne<&>';
    d.classes = [evil, ...d.classes.slice(1)];
    d.per_class[evil] = d.per_class['Acne']!;
    d.pr_curves[evil] = d.pr_curves['Acne']!;
    const pr = prCurvesSvg(d);
    expect(xmlProblems(pr)).toEqual([]);
    expect(pr).toContain('Acne&lt;&amp;&gt; (AP');
  });

  it('the heatmap writes each count in its cell, rows true and columns predicted', () => {
    const m = classification(skinTypeReport());
    const svg = confusionMatrixSvg(m);
    const cells = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)" font-size="\d+" text-anchor="middle" fill="#(?:ffffff|000000)"(?: font-weight="bold")?>(\d+)<\/text>/g)];
    expect(cells).toHaveLength(9);
    // Cells are drawn row by row: the k-th is confusion_matrix[floor(k/3)][k%3].
    expect(cells.map((c) => Number(c[3]))).toEqual(m.confusion_matrix.flat());
    const xs = cells.map((c) => Number(c[1]));
    const ys = cells.map((c) => Number(c[2]));
    expect(xs[1]!).toBeGreaterThan(xs[0]!);
    expect(ys[3]!).toBeGreaterThan(ys[0]!);
    // The diagonal is bold.
    expect(svg).toMatch(new RegExp(`font-weight="bold">${m.confusion_matrix[0]![0]}</text>`));
  });

  it('the reliability diagram has the diagonal, one bar per non-empty bin and its count', () => {
    const m = classification(skinTypeReport());
    const svg = reliabilitySvg(m);
    const bars = svg.match(/fill="#0072B2" fill-opacity="0.85"/g) ?? [];
    const filled = m.reliability.filter((b) => b.count > 0);
    expect(bars).toHaveLength(filled.length);
    expect(filled.length).toBeGreaterThan(3);
    for (const b of filled) expect(texts(svg)).toContain(String(b.count));
    expect(svg).toContain('x1="70" y1="430" x2="510" y2="50" stroke="#000000" stroke-width="1.5" stroke-dasharray="5 4"');
    expect(texts(svg)).toContain(`Reliability diagram (ECE ${m.ece.toFixed(4)})`);
  });

  it('PR curves: one line per class with 101 points, AP in the legend', () => {
    const m = detection(detectionReport());
    const svg = prCurvesSvg(m);
    const lines = [...svg.matchAll(/<polyline points="([^"]+)"/g)];
    expect(lines).toHaveLength(10);
    for (const l of lines) expect(l[1]!.split(' ')).toHaveLength(101);
    for (const c of m.classes) expect(texts(svg)).toContain(`${c} (AP ${m.per_class[c]!.ap50.toFixed(3)})`);
    // Past the 8 palette colours, the line style changes.
    expect(svg.match(/<polyline[^>]*stroke-dasharray/g)).toHaveLength(2);
    expect(svg).toContain(`stroke="${PALETTE[0]}"`);
  });

  it('slice bars: n under every bar, the worst highlighted once, empty values marked', () => {
    const r = skinTypeReport();
    const slice = r.slices['skin_tone']!;
    const svg = sliceBarsSvg(slice);
    const t = texts(svg);
    for (const v of Object.values(slice.values)) expect(t).toContain(`n=${v.n}`);
    expect(t).toContain('no rows');
    const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="56" height="([\d.]+)" fill="(#[0-9A-F]+)"\/>/g)];
    expect(bars.map((b) => b[2])).toEqual(['#0072B2', '#0072B2', '#0072B2', '#0072B2', '#D55E00']);
    const worstHeight = Number(bars[4]![1]);
    expect(worstHeight).toBeCloseTo(slice.worst!.score * 300, 1);
    expect(t).toContain(`worst V (${slice.worst!.score.toFixed(4)}), best II (${slice.best!.score.toFixed(4)}), gap ${slice.gap.toFixed(4)}`);
  });

  it('slice bars with hundreds of values draw the lowest MAX_BARS, lowest first', async () => {
    const r = skinTypeReport();
    const base = r.slices['skin_tone']!;
    const values: Record<string, SliceValue> = {};
    for (let i = 0; i < 500; i++) {
      const m = structuredClone(base.values['I']!.metrics) as ClassificationMetrics;
      m.f1_macro = ((i * 37) % 500) / 500;
      values[`site-${i}`] = { n: 10 + i, metrics: m };
    }
    values['empty-site'] = { n: 0, metrics: null };
    const svg = sliceBarsSvg(sliceOf('source', 'f1_macro', values));
    expect(xmlProblems(svg)).toEqual([]);
    expect(texts(svg)[0]).toBe(`f1_macro per source (the ${MAX_BARS} lowest of 501 values)`);
    const heights = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="14" height="([\d.]+)" fill="#[0-9A-F]+"\/>/g)].map((b) => Number(b[1]));
    expect(heights).toHaveLength(MAX_BARS);
    expect(heights).toEqual([...heights].sort((a, b) => a - b));
    expect(heights[0]).toBe(0);
    // n joins the label of a narrow bar; the worst is drawn first, in the highlight colour.
    expect(svg).toMatch(/fill="#D55E00" font-weight="bold"[^>]*>site-0 n=10<\/text>/);
    const png = await svgToPng(svg);
    expect(pngSize(png).width).toBeLessThan(1200);
    expect(png.length).toBeLessThan(100 * 1024);
  });

  it('svgToPng renders at the requested width, sharp parses the SVG', async () => {
    const svg = reliabilitySvg(classification(skinTypeReport()));
    const own = pngSize(await svgToPng(svg));
    expect(own).toEqual({ width: 560, height: 520 });
    const wide = pngSize(await svgToPng(svg, 1120));
    expect(wide).toEqual({ width: 1120, height: 1040 });
    await expect(svgToPng('<svg xmlns="http://www.w3.org/2000/svg"><rect')).rejects.toThrow();
  });

  it('writeEvaluationPlots writes SVG and PNG pairs under 100 KB, idempotently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skintwin-plots-'));
    try {
      const r = contextCorrectionReport();
      const plots = await writeEvaluationPlots(r, dir);
      expect(plots).toEqual([
        { name: 'confusion-matrix', file: 'confusion-matrix.png', title: 'Confusion matrix' },
        { name: 'reliability', file: 'reliability.png', title: 'Reliability diagram' },
        { name: 'slice-source', file: 'slice-source.png', title: 'f1_macro per source' },
      ]);
      const files = (await readdir(dir)).sort();
      expect(files).toEqual(['confusion-matrix.png', 'confusion-matrix.svg', 'reliability.png', 'reliability.svg', 'slice-source.png', 'slice-source.svg']);
      for (const f of files.filter((f) => f.endsWith('.png'))) {
        const png = await readFile(join(dir, f));
        expect(png.length, f).toBeLessThan(100 * 1024);
        expect(pngSize(png).width).toBeGreaterThan(300);
      }
      const svg = await readFile(join(dir, 'confusion-matrix.svg'), 'utf8');
      expect(svg).toBe(confusionMatrixSvg(classification(r)));
      await writeEvaluationPlots(r, dir);
      expect((await readdir(dir)).sort()).toEqual(files);
      expect(await readFile(join(dir, 'confusion-matrix.svg'), 'utf8')).toBe(svg);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writeEvaluationPlots picks the plots of each task', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skintwin-plots-'));
    try {
      expect((await writeEvaluationPlots(detectionReport(), join(dir, 'd'))).map((p) => p.name)).toEqual(['pr-curves', 'slice-skin_tone']);
      expect(await writeEvaluationPlots(chainReport(), join(dir, 'c'))).toEqual([]);
      const weird = skinTypeReport();
      weird.slices = { 'skin tone/fitz': weird.slices['skin_tone']! };
      weird.slices['skin tone/fitz']!.key = 'skin tone/fitz';
      const names = (await writeEvaluationPlots(weird, join(dir, 'w'))).map((p) => p.file);
      expect(names).toContain('slice-skin_tone_fitz.png');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
