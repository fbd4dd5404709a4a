// Predictions files (JSON lines) read as a stream into typed arrays, every row checked with
// file:line errors, then scored with the same metric code the evaluate stage uses.
//   classification: {"id", "label": "<true class>", "probs": {"<class>": p, …}, "slice": {"skin_tone": "V", …}}
//   detection:      {"id", "gt": [{"cls", "box": [x1, y1, x2, y2]}], "pred": [{"cls", "conf", "box"}], "slice": {…}}

import { createReadStream } from 'node:fs';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import { suggestion } from '../../core/suggest.ts';
import type { MetricsReport } from '../types.ts';
import { scoreDetections, type Box, type DetectionSample } from './detection.ts';
import { hashRange, IdSet, numberEnd, rangeEquals, scanNumber, skipSpace, stringEnd } from './scan.ts';
import { classificationReport, detectionSlices, type ExpectedSlices, type SliceColumn } from './slices.ts';

/** How far a row's probabilities may sum from 1 (float32 softmax outputs round). */
export const PROBABILITY_SUM_TOLERANCE = 1e-3;

export interface ClassificationPredictions {
  classes: string[];
  labels: Int32Array;
  /** n × C, row-major, in `classes` order. */
  probs: Float64Array;
  slices: Map<string, SliceColumn>;
}

interface LineContext {
  file: string;
  line: number;
}

const fail = (at: LineContext, message: string, field?: string, hint?: string): never => {
  throw new DataError(message, { file: at.file, line: at.line, ...(field ? { field } : {}), ...(hint ? { hint } : {}) });
};

/**
 * Calls `onLine` with each line of the file as a range [start, end) of a chunk of text and its
 * 1-based number, synchronously within each 1 MiB chunk (a per-line promise would cost more than
 * the line's parse). Lines are not cut out of the chunk: a reader that scans in place allocates
 * nothing per line. Blank lines are the callee's to skip.
 */
async function eachLineRange(path: string, display: string, onLine: (text: string, start: number, end: number, line: number) => void, signal?: AbortSignal): Promise<void> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let rest = '';
  let line = 0;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      if (signal?.aborted) throw new InterruptedError();
      const text = rest + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        line++;
        onLine(text, start, nl, line);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') throw new ConfigurationError(`cannot read the predictions file (${code})`, { file: display });
    throw error;
  } finally {
    stream.destroy();
  }
  if (rest.length) onLine(rest, 0, rest.length, line + 1);
}

/** eachLineRange with each non-blank line cut out. */
function eachLine(path: string, display: string, onLine: (text: string, line: number) => void, signal?: AbortSignal): Promise<void> {
  return eachLineRange(
    path,
    display,
    (text, start, end, line) => {
      const s = text.slice(start, end);
      // Most lines start with `{`: only others need the whitespace check.
      if (s.charCodeAt(0) === 123 || s.trim()) onLine(s, line);
    },
    signal,
  );
}

function parseLine(text: string, at: LineContext): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (/\b(NaN|-?Infinity)\b/.test(text)) fail(at, 'NaN or Infinity is not a JSON number: every probability, confidence and box value must be finite');
    fail(at, `not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(at, 'each line must be one JSON object');
  return value as Record<string, unknown>;
}

function readId(row: Record<string, unknown>, at: LineContext, seen: IdSet): string {
  const raw = row.id;
  if ((typeof raw !== 'string' || raw === '') && typeof raw !== 'number') fail(at, 'missing `id` (a non-empty string)', 'id');
  const id = String(raw);
  if (!seen.add(id)) fail(at, `duplicate id \`${id}\`: each row must be scored once`, 'id');
  return id;
}

interface Column {
  values: string[];
  index: Map<string, number>;
  /** hashRange of a value → its code (the fast path's lookup, checked against `values`). */
  byHash: Map<number, number>;
  codes: Int32Array;
}

/** The code of the value s[from, to) in `col`, or −1 where it is new: a scan of few values, else a hash. */
function valueCode(col: Column, s: string, from: number, to: number): number {
  const values = col.values;
  if (values.length <= 8) {
    for (let c = 0; c < values.length; c++) if (rangeEquals(s, from, to, values[c]!)) return c;
    return -1;
  }
  const code = col.byHash.get(hashRange(s, from, to));
  return code !== undefined && rangeEquals(s, from, to, values[code]!) ? code : -1;
}

/** Grows a slice column per key as rows arrive; rows before a key first appears lack it (−1). */
class SliceBuilder {
  readonly columns = new Map<string, Column>();
  /** hashRange of a key → its column, for the fast path (which leaves new keys to add()). */
  readonly byHash = new Map<number, { key: string; column: Column }>();
  /** The columns in order of appearance. */
  readonly list: { key: string; column: Column }[] = [];
  private capacity = 1024;

  add(row: Record<string, unknown>, r: number, at: LineContext): void {
    const slice = row.slice;
    if (slice === undefined || slice === null) return;
    if (typeof slice !== 'object' || Array.isArray(slice)) fail(at, '`slice` must be an object of key → value, e.g. {"skin_tone": "V"}', 'slice');
    for (const key in slice as Record<string, unknown>) {
      const raw = (slice as Record<string, unknown>)[key];
      if (typeof raw !== 'string' && typeof raw !== 'number') fail(at, `slice \`${key}\` must be a string`, `slice.${key}`);
      let col = this.columns.get(key);
      if (!col) {
        this.columns.set(key, (col = { values: [], index: new Map(), byHash: new Map(), codes: new Int32Array(this.capacity).fill(-1) }));
        const entry = { key, column: col };
        this.byHash.set(hashRange(key, 0, key.length), entry);
        this.list.push(entry);
      }
      this.set(col, this.code(col, String(raw)), r);
    }
  }

  /** The code of `value` in `col`, new ones numbered in order of appearance. */
  code(col: Column, value: string): number {
    let code = col.index.get(value);
    if (code === undefined) {
      code = col.values.length;
      col.index.set(value, code);
      col.values.push(value);
      col.byHash.set(hashRange(value, 0, value.length), code);
    }
    return code;
  }

  set(col: Column, code: number, r: number): void {
    if (r >= col.codes.length) {
      while (this.capacity <= r) this.capacity *= 2;
      const grown = new Int32Array(this.capacity).fill(-1);
      grown.set(col.codes);
      col.codes = grown;
    }
    col.codes[r] = code;
  }

  finish(n: number): Map<string, SliceColumn> {
    const out = new Map<string, SliceColumn>();
    for (const [key, col] of this.columns) {
      const codes = new Int32Array(n).fill(-1);
      codes.set(col.codes.subarray(0, Math.min(n, col.codes.length)));
      out.set(key, { values: col.values, codes });
    }
    return out;
  }
}

/**
 * Read a classification predictions file; `classes` fixes the column order (else the first row's
 * `probs` keys). `o.reference`: every line through JSON.parse (what the fast path must equal).
 */
export async function readClassificationPredictions(
  path: string,
  display: string,
  o: { classes?: readonly string[]; signal?: AbortSignal; reference?: boolean } = {},
): Promise<ClassificationPredictions> {
  let classes: string[] | undefined = o.classes ? [...o.classes] : undefined;
  let classIndex = new Map<string, number>();
  let classByHash = new Map<number, number>();
  let C = 0;
  let capacity = 1024;
  let labels = new Int32Array(capacity);
  let probs = new Float64Array(0);
  let stamp = new Int32Array(0);
  const seen = new IdSet();
  const slices = new SliceBuilder();
  const setClasses = (names: string[]): void => {
    classes = names;
    C = names.length;
    classIndex = new Map(names.map((c, k) => [c, k]));
    classByHash = new Map(names.map((c, k) => [hashRange(c, 0, c.length), k]));
    probs = new Float64Array(capacity * C);
    stamp = new Int32Array(C);
  };
  if (classes) {
    if (new Set(classes).size !== classes.length || classes.some((c) => c === '')) throw new ConfigurationError('classes must be distinct, non-empty names', { field: 'classes' });
    setClasses(classes);
  }
  let n = 0;
  const grow = (): void => {
    capacity *= 2;
    const l = new Int32Array(capacity);
    l.set(labels);
    labels = l;
    const q = new Float64Array(capacity * C);
    q.set(probs);
    probs = q;
  };
  const at: LineContext = { file: display, line: 0 };
  const reference = o.reference === true;

  /** The reference reader of one line: JSON.parse, then every check with its message. */
  const slowRow = (text: string): void => {
    const row = parseLine(text, at);
    readId(row, at, seen);
    const p = row.probs;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail(at, 'missing `probs` (an object of class → probability)', 'probs');
    const pr = p as Record<string, unknown>;
    if (!classes) {
      const names = Object.keys(pr);
      if (!names.length) fail(at, '`probs` is empty', 'probs');
      setClasses(names);
    }
    const names = classes!;
    const rawLabel = row.label;
    if (typeof rawLabel !== 'string' && typeof rawLabel !== 'number') fail(at, 'missing `label` (the true class)', 'label');
    const label = classIndex.get(String(rawLabel));
    if (label === undefined) fail(at, `unknown label \`${String(rawLabel)}\``, 'label', suggestion(String(rawLabel), names) ?? `classes: ${names.join(', ')}`);
    if (n === capacity) grow();
    let sum = 0;
    let keys = 0;
    for (const _ in pr) keys++;
    const base = n * C;
    for (let k = 0; k < C; k++) {
      const v = pr[names[k]!];
      if (typeof v !== 'number') {
        if (v === undefined) fail(at, `\`probs\` has no \`${names[k]}\``, `probs.${names[k]}`, `every row needs all ${C} classes: ${names.join(', ')}`);
        fail(at, `probability of \`${names[k]}\` is ${JSON.stringify(v)}, not a number`, `probs.${names[k]}`);
      }
      const x = v as number;
      if (!(x >= 0 && x <= 1)) fail(at, `probability of \`${names[k]}\` is ${x}, outside [0, 1]`, `probs.${names[k]}`);
      probs[base + k] = x;
      sum += x;
    }
    if (keys !== C) {
      const extra = Object.keys(pr).find((k) => !classIndex.has(k)) ?? '';
      fail(at, `unknown class \`${extra}\` in \`probs\``, `probs.${extra}`, suggestion(extra, names) ?? `classes: ${names.join(', ')}`);
    }
    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) fail(at, `probabilities sum to ${sum}, not 1 (± ${PROBABILITY_SUM_TOLERANCE})`, 'probs');
    labels[n] = label!;
    slices.add(row, n, at);
    n++;
  };

  // Slice values of the line under the fast path, applied only once the whole line is accepted.
  const pendingColumns: Column[] = [];
  const pendingValues: string[] = [];
  const pendingCodes: number[] = [];
  let generation = 0;

  /**
   * The common line — {"id": "…", "label": "…", "probs": {…numbers}, "slice": {…strings}} with
   * classes and slice keys already known and no escapes — read in place without JSON.parse or
   * substrings. Returns false, having changed nothing that the reference reader would not
   * overwrite, for anything else or anything wrong: slowRow then reads the line and raises
   * its error, so every message stays the reference reader's.
   */
  const fastRow = (s: string, i: number, end: number): boolean => {
    if (!classes) return false;
    if (n === capacity) grow();
    const base = n * C;
    const gen = ++generation;
    let idFrom = -1;
    let idTo = -1;
    let labelFrom = -1;
    let labelTo = -1;
    let probsSeen = false;
    let sliceSeen = false;
    let count = 0;
    let pending = 0;
    i = skipSpace(s, i + 1, end);
    if (s.charCodeAt(i) !== 34) return false;
    for (;;) {
      // A key.
      if (s.charCodeAt(i) !== 34) return false;
      const keyFrom = i + 1;
      const keyTo = stringEnd(s, i, end);
      if (keyTo < 0) return false;
      i = skipSpace(s, keyTo + 1, end);
      if (s.charCodeAt(i) !== 58) return false;
      i = skipSpace(s, i + 1, end);
      const c = s.charCodeAt(i);
      const len = keyTo - keyFrom;
      if (len === 2 && rangeEquals(s, keyFrom, keyTo, 'id')) {
        if (idFrom >= 0 || c !== 34) return false;
        idFrom = i + 1;
        idTo = stringEnd(s, i, end);
        if (idTo <= idFrom) return false;
        i = idTo + 1;
      } else if (len === 5 && rangeEquals(s, keyFrom, keyTo, 'label')) {
        if (labelFrom >= 0 || c !== 34) return false;
        labelFrom = i + 1;
        labelTo = stringEnd(s, i, end);
        if (labelTo < 0) return false;
        i = labelTo + 1;
      } else if (len === 5 && rangeEquals(s, keyFrom, keyTo, 'probs')) {
        if (probsSeen || c !== 123) return false;
        probsSeen = true;
        i = skipSpace(s, i + 1, end);
        if (s.charCodeAt(i) !== 125) {
          for (;;) {
            if (s.charCodeAt(i) !== 34) return false;
            const nameTo = stringEnd(s, i, end);
            if (nameTo < 0) return false;
            // Rows usually list the classes in one order: try the expected one before hashing.
            let k = count < C && rangeEquals(s, i + 1, nameTo, classes[count]!) ? count : classByHash.get(hashRange(s, i + 1, nameTo));
            if (k === undefined || stamp[k] === gen || (k !== count && !rangeEquals(s, i + 1, nameTo, classes[k]!))) return false;
            stamp[k] = gen;
            count++;
            i = skipSpace(s, nameTo + 1, end);
            if (s.charCodeAt(i) !== 58) return false;
            i = skipSpace(s, i + 1, end);
            const x = scanNumber(s, i, end);
            if (!(x >= 0 && x <= 1)) return false;
            probs[base + k] = x;
            i = skipSpace(s, numberEnd, end);
            const d = s.charCodeAt(i);
            if (d === 44) i = skipSpace(s, i + 1, end);
            else if (d === 125) break;
            else return false;
          }
        }
        i++;
      } else if (len === 5 && rangeEquals(s, keyFrom, keyTo, 'slice')) {
        if (sliceSeen || c !== 123) return false;
        sliceSeen = true;
        i = skipSpace(s, i + 1, end);
        if (s.charCodeAt(i) !== 125) {
          for (;;) {
            if (s.charCodeAt(i) !== 34) return false;
            const nameTo = stringEnd(s, i, end);
            if (nameTo < 0) return false;
            const expected = slices.list[pending];
            let col: Column;
            if (expected && rangeEquals(s, i + 1, nameTo, expected.key)) col = expected.column;
            else {
              const known = slices.byHash.get(hashRange(s, i + 1, nameTo));
              if (!known || !rangeEquals(s, i + 1, nameTo, known.key)) return false;
              col = known.column;
            }
            for (let q = 0; q < pending; q++) if (pendingColumns[q] === col) return false;
            i = skipSpace(s, nameTo + 1, end);
            if (s.charCodeAt(i) !== 58) return false;
            i = skipSpace(s, i + 1, end);
            if (s.charCodeAt(i) !== 34) return false;
            const valueTo = stringEnd(s, i, end);
            if (valueTo < 0) return false;
            const code = valueCode(col, s, i + 1, valueTo);
            const hit = code >= 0;
            pendingColumns[pending] = col;
            pendingCodes[pending] = code;
            pendingValues[pending] = hit ? '' : s.slice(i + 1, valueTo);
            pending++;
            i = skipSpace(s, valueTo + 1, end);
            const d = s.charCodeAt(i);
            if (d === 44) i = skipSpace(s, i + 1, end);
            else if (d === 125) break;
            else return false;
          }
        }
        i++;
      } else if (c === 34) {
        // Another field: ignored, as by the reference reader, when a plain string or a number.
        const to = stringEnd(s, i, end);
        if (to < 0) return false;
        i = to + 1;
      } else {
        if (Number.isNaN(scanNumber(s, i, end))) return false;
        i = numberEnd;
      }
      i = skipSpace(s, i, end);
      const d = s.charCodeAt(i);
      if (d === 44) i = skipSpace(s, i + 1, end);
      else if (d === 125) break;
      else return false;
    }
    if (skipSpace(s, i + 1, end) !== end) return false;
    if (idFrom < 0 || labelFrom < 0 || count !== C) return false;
    let label = -1;
    if (C <= 8) {
      for (let k = 0; k < C; k++) if (rangeEquals(s, labelFrom, labelTo, classes[k]!)) label = k;
    } else {
      const k = classByHash.get(hashRange(s, labelFrom, labelTo));
      if (k !== undefined && rangeEquals(s, labelFrom, labelTo, classes[k]!)) label = k;
    }
    if (label < 0) return false;
    let sum = 0;
    for (let k = 0; k < C; k++) sum += probs[base + k]!;
    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) return false;
    // The last check, and the first change: a duplicate is left to slowRow to report.
    if (!seen.add(s, idFrom, idTo)) return false;
    labels[n] = label;
    for (let q = 0; q < pending; q++) {
      const col = pendingColumns[q]!;
      slices.set(col, pendingCodes[q]! >= 0 ? pendingCodes[q]! : slices.code(col, pendingValues[q]!), n);
    }
    n++;
    return true;
  };

  await eachLineRange(
    path,
    display,
    (text, start, end, line) => {
      if (!reference && text.charCodeAt(start) === 123 && fastRow(text, start, end)) return;
      const s = text.slice(start, end);
      if (s.charCodeAt(0) !== 123 && !s.trim()) return;
      at.line = line;
      slowRow(s);
    },
    o.signal,
  );
  if (n === 0) throw new DataError('no predictions in the file (empty test split)', { file: display });
  return { classes: classes!, labels: labels.slice(0, n), probs: probs.slice(0, n * C), slices: slices.finish(n) };
}

function readBox(raw: unknown, at: LineContext, field: string): Box {
  if (!Array.isArray(raw) || raw.length !== 4 || !raw.every((v) => typeof v === 'number' && Number.isFinite(v))) fail(at, '`box` must be [x1, y1, x2, y2] in pixels', field);
  const b = raw as Box;
  if (b[2] < b[0] || b[3] < b[1]) fail(at, `box ${JSON.stringify(b)} has x2 < x1 or y2 < y1`, field);
  return b;
}

/** Read a detection predictions file; `classes` fixes the class list (else classes in first-seen order). */
export async function readDetectionPredictions(
  path: string,
  display: string,
  o: { classes?: readonly string[]; signal?: AbortSignal } = {},
): Promise<{ classes: string[]; samples: DetectionSample[] }> {
  const fixed = o.classes !== undefined;
  const classes: string[] = o.classes ? [...o.classes] : [];
  const index = new Map(classes.map((c, k) => [c, k]));
  const classOf = (raw: unknown, at: LineContext, field: string): number => {
    if (typeof raw !== 'string' && typeof raw !== 'number') fail(at, 'missing `cls` (a class name)', field);
    const name = String(raw);
    let k = index.get(name);
    if (k === undefined) {
      if (fixed) fail(at, `unknown class \`${name}\``, field, suggestion(name, classes) ?? `classes: ${classes.join(', ')}`);
      k = classes.length;
      classes.push(name);
      index.set(name, k);
    }
    return k!;
  };
  const samples: DetectionSample[] = [];
  const seen = new IdSet();
  const at: LineContext = { file: display, line: 0 };
  await eachLine(path, display, (text, line) => {
    at.line = line;
    const row = parseLine(text, at);
    const id = readId(row, at, seen);
    const list = (key: 'gt' | 'pred'): unknown[] => {
      const v = row[key];
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) fail(at, `\`${key}\` must be a list of boxes`, key);
      return v as unknown[];
    };
    const gt = list('gt').map((g, i) => {
      if (typeof g !== 'object' || g === null) fail(at, 'a ground-truth entry must be {"cls", "box"}', `gt[${i}]`);
      const e = g as Record<string, unknown>;
      return { cls: classOf(e.cls, at, `gt[${i}].cls`), box: readBox(e.box, at, `gt[${i}].box`) };
    });
    const pred = list('pred').map((p, i) => {
      if (typeof p !== 'object' || p === null) fail(at, 'a prediction must be {"cls", "conf", "box"}', `pred[${i}]`);
      const e = p as Record<string, unknown>;
      const conf = e.conf;
      if (conf === undefined) fail(at, 'a prediction needs `conf` (its confidence in [0, 1])', `pred[${i}].conf`);
      if (typeof conf !== 'number' || !(conf >= 0 && conf <= 1)) fail(at, `confidence ${JSON.stringify(conf)} is not a number in [0, 1]`, `pred[${i}].conf`);
      return { cls: classOf(e.cls, at, `pred[${i}].cls`), conf: conf as number, box: readBox(e.box, at, `pred[${i}].box`) };
    });
    const sample: DetectionSample = { id, gt, pred };
    const slice = row.slice;
    if (slice !== undefined && slice !== null) {
      if (typeof slice !== 'object' || Array.isArray(slice)) fail(at, '`slice` must be an object of key → value, e.g. {"skin_tone": "V"}', 'slice');
      const s: Record<string, string> = {};
      for (const [k, v] of Object.entries(slice as Record<string, unknown>)) {
        if (typeof v !== 'string' && typeof v !== 'number') fail(at, `slice \`${k}\` must be a string`, `slice.${k}`);
        s[k] = String(v);
      }
      sample.slice = s;
    }
    samples.push(sample);
  }, o.signal);
  if (samples.length === 0) throw new DataError('no predictions in the file (empty test split)', { file: display });
  if (classes.length === 0) throw new DataError('no boxes in the file and no classes given: pass the class list', { file: display, field: 'classes' });
  return { classes, samples };
}

/** Metrics and per-slice metrics of a predictions file: what `skintwin metrics` prints. */
export async function metricsFromFile(
  path: string,
  display: string,
  task: 'classification' | 'detection',
  o: { classes?: readonly string[]; signal?: AbortSignal; expected?: ExpectedSlices; confidence?: number } = {},
): Promise<MetricsReport> {
  const read = { ...(o.classes ? { classes: o.classes } : {}), ...(o.signal ? { signal: o.signal } : {}) };
  if (task === 'classification') {
    const p = await readClassificationPredictions(path, display, read);
    return classificationReport(p.labels, p.probs, p.classes, p.slices, o.expected);
  }
  const d = await readDetectionPredictions(path, display, read);
  const score = { ...(o.confidence !== undefined ? { confidence: o.confidence } : {}), ...(o.expected ? { expected: o.expected } : {}) };
  return { metrics: scoreDetections(d.samples, d.classes, score), slices: detectionSlices(d.samples, d.classes, score) };
}
