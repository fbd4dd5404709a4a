import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClassificationPredictions, seededRandom, type ClassificationPredictions } from '../../pipeline/evaluate/metrics/index.ts';
import { IdSet, scanNumber } from '../../pipeline/evaluate/metrics/scan.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skintwin-metrics-reader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function file(text: string): Promise<string> {
  const path = join(dir, `f${counter++}.jsonl`);
  await writeFile(path, text);
  return path;
}

const plain = (r: ClassificationPredictions): unknown => ({
  classes: r.classes,
  labels: Array.from(r.labels),
  probs: Array.from(r.probs),
  slices: [...r.slices].map(([k, c]) => [k, c.values, Array.from(c.codes)]),
});

async function both(path: string, o: { classes?: string[] } = {}): Promise<[unknown, unknown]> {
  const settle = (p: Promise<ClassificationPredictions>): Promise<unknown> =>
    p.then(plain, (e: unknown) => ({ error: (e as Error).name, message: (e as Error).message }));
  return [await settle(readClassificationPredictions(path, 'p.jsonl', o)), await settle(readClassificationPredictions(path, 'p.jsonl', { ...o, reference: true }))];
}

const CLASSES = ['Dry', 'Normal', 'Oily'];
const TONES = ['I', 'II', 'III', 'IV', 'V', 'VI'];

/** Lines in every spelling the reader meets: the common one and variants the fast path must hand over or read alike. */
function lines(count: number, seed: number): string[] {
  const random = seededRandom(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const y = Math.floor(random() * 3);
    const a = Math.round(random() * 0.5 * 1e6) / 1e6;
    const b = Math.round(random() * 0.4 * 1e6) / 1e6;
    const p = [a, b, 1 - a - b]; // 1 − a − b: up to 17 significant digits
    const probs = `{"Dry":${p[0]},"Normal":${p[1]},"Oily":${p[2]}}`;
    const tone = TONES[i % 6]!;
    switch (i % 13) {
      case 1:
        out.push(`{ "id" : "r${i}" , "label" : "${CLASSES[y]}" , "probs" : { "Oily" : ${p[2]} , "Dry" : ${p[0]} , "Normal" : ${p[1]} } }\r`);
        break;
      case 2:
        out.push(`{"id":${i},"label":"${CLASSES[y]}","probs":${probs},"slice":{"skin_tone":"${tone}"}}`);
        break;
      case 3:
        out.push(`{"id":"r\\u0030${i}","label":"${CLASSES[y]}","probs":${probs},"extra":"x","n":-1.5e3,"slice":{"source":"s${i % 5}","skin_tone":"${tone}"}}`);
        break;
      case 4:
        out.push(`{"id":"r${i}","label":"${CLASSES[y]}","probs":{"Dry":${p[0]!.toExponential()},"Normal":${p[1]},"Oily":${p[2]}},"slice":{"skin_tone":"é${tone}"}}`);
        break;
      case 5:
        out.push('');
        out.push('   ');
        out.push(`{"id":"r${i}","label":"${CLASSES[y]}","probs":${probs},"meta":{"k":[1,2]}}`);
        break;
      case 6:
        out.push(`{"slice":{"skin_tone":"${tone}","source":"kaggle"},"probs":${probs},"label":"${CLASSES[y]}","id":"r${i}"}`);
        break;
      case 7:
        out.push(`{"id":"r${i}","label":"${CLASSES[y]}","probs":${probs},"slice":{"skin_tone":${i % 4}}}`);
        break;
      default:
        out.push(`{"id":"r${i}","label":"${CLASSES[y]}","probs":${probs},"slice":{"skin_tone":"${tone}","source":"kaggle"}}`);
    }
  }
  return out;
}

describe('predictions reader: fast path against the reference reader (JSON.parse on every line)', () => {
  it('reads every spelling of a row to the same arrays, slices and codes', async () => {
    const path = await file(lines(2000, 1).join('\n') + '\n');
    const [fast, reference] = await both(path);
    expect((fast as { labels: number[] }).labels).toHaveLength(2000);
    expect(fast).toEqual(reference);
    const [fastGiven, referenceGiven] = await both(path, { classes: ['Oily', 'Dry', 'Normal'] });
    expect(fastGiven).toEqual(referenceGiven);
  });

  it('reads a last line without a newline', async () => {
    const [fast, reference] = await both(await file(lines(20, 2).join('\n')));
    expect(fast).toEqual(reference);
  });

  // Each bad line follows 12,000 good rows (over 1 MiB: a read chunk ends inside the file) and blank lines.
  const good = lines(12000, 3);
  const base = '{"id":"bad","label":"Dry","probs":';
  const bad: [string, string][] = [
    ['a duplicate id', '{"id":"r8","label":"Dry","probs":{"Dry":1,"Normal":0,"Oily":0}}'],
    ['a duplicate numeric id', '{"id":"2","label":"Dry","probs":{"Dry":1,"Normal":0,"Oily":0}}'],
    ['an unknown label', '{"id":"bad","label":"Oilly","probs":{"Dry":1,"Normal":0,"Oily":0}}'],
    ['a missing class', `${base}{"Dry":0.5,"Normal":0.5}}`],
    ['a repeated class', `${base}{"Dry":0.5,"Normal":0.5,"Dry":0}}`],
    ['an unknown class', `${base}{"Dry":0.5,"Normal":0.5,"Oily":0,"Combination":0}}`],
    ['a probability outside [0, 1]', `${base}{"Dry":1.5,"Normal":-0.5,"Oily":0}}`],
    ['a sum off 1', `${base}{"Dry":0.5,"Normal":0.4,"Oily":0.05}}`],
    ['a bad number', `${base}{"Dry":01,"Normal":0,"Oily":0}}`],
    ['NaN', `${base}{"Dry":NaN,"Normal":0.5,"Oily":0.5}}`],
    ['a truncated line', `${base}{"Dry":1,"Normal":0,"Oily":0}`],
    ['a trailing comma', `${base}{"Dry":1,"Normal":0,"Oily":0,}}`],
    ['trailing text', `${base}{"Dry":1,"Normal":0,"Oily":0}} x`],
    ['an empty id', '{"id":"","label":"Dry","probs":{"Dry":1,"Normal":0,"Oily":0}}'],
    ['a bad slice', `${base}{"Dry":1,"Normal":0,"Oily":0},"slice":{"skin_tone":["V"]}}`],
    ['a slice that is not an object', `${base}{"Dry":1,"Normal":0,"Oily":0},"slice":"V"}`],
  ];
  for (const [what, line] of bad) {
    it(`raises the reference reader's error with its line number for ${what}`, async () => {
      const all = [...good, '', line, ...good.slice(0, 3)];
      const path = await file(all.join('\n') + '\n');
      const [fast, reference] = await both(path);
      expect(fast).toEqual(reference);
      expect(fast).toMatchObject({ error: 'DataError', message: expect.stringMatching(new RegExp(`^p\\.jsonl:${all.indexOf(line) + 1}: `)) });
    });
  }
});

describe('scanNumber', () => {
  it('reads JSON numbers exactly as JSON.parse does, and refuses what is not one', () => {
    const random = seededRandom(5);
    const texts = ['0', '-0', '1', '0.1', '0.30000000000000004', '1e-7', '2.5E+3', '123456789012345678', '0.000001', '-12.75', '9007199254740993', '0.1234567890123456789'];
    for (let i = 0; i < 2000; i++) texts.push(String(random()), String(Math.round(random() * 1e6) / 1e6), (random() * 10).toFixed(i % 18));
    for (const t of texts) {
      expect([t, scanNumber(`${t},`, 0, t.length + 1)]).toEqual([t, JSON.parse(t) as number]);
      expect(Object.is(scanNumber(t, 0, t.length), JSON.parse(t))).toBe(true);
    }
    for (const t of ['-', '.5', '1.', '+1', 'e5', '1e', 'x']) expect(scanNumber(t, 0, t.length)).toBeNaN();
  });
});

describe('IdSet', () => {
  it('holds each id once, exactly, through growth', () => {
    const ids = new IdSet();
    for (let i = 0; i < 50000; i++) expect(ids.add(`id-${i}`)).toBe(true);
    expect(ids.add('id-49999')).toBe(false);
    expect(ids.add('xid-1', 1)).toBe(false); // the range "id-1"
    expect(ids.add('id-50000')).toBe(true);
    expect(ids.add('')).toBe(true);
    expect(ids.add('')).toBe(false);
    expect(ids.size).toBe(50002);
  });
});
