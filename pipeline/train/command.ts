// The `command` trainer: run a team's own training program (GPU runners) under a written contract,
// then check what it wrote — files, metrics, ONNX interface, a smoke inference — before anything
// downstream trusts it, and write the model card. docs/train.md states the contract clauses.

import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, InterruptedError } from '../core/errors.ts';
import { exists, sha256File, writeJsonAtomic } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import { runShell } from '../command/stage.ts';
import { loadOrt } from '../inference/session.ts';
import { MODEL_CARD_FILE, MODEL_CARD_FORMAT, modelCardProblems, type CardClass } from './card.ts';
import { classesFromTargets, readNumericTable } from './trainers.ts';

export const CONTRACT = {
  exit: 'contract clause 1 (exit)',
  model: 'contract clause 2 (model.onnx)',
  metrics: 'contract clause 3 (metrics.json)',
  interface: 'contract clause 4 (interface)',
  smoke: 'contract clause 5 (smoke inference)',
} as const;

/** Probability rows must sum to 1 within this. */
export const PROBABILITY_TOLERANCE = 1e-3;

export type CommandTask = 'object-detection' | 'image-classification' | 'tabular-classification';

/** One declared tensor; a string dim is the batch (any size, symbolic or fixed). */
export interface DeclaredTensor {
  name: string;
  dtype: 'float32' | 'int64';
  shape: (number | string)[];
}

/** What the program must produce for a model: task, classes and the ONNX interface. */
export interface TaskSpec {
  model: string;
  task: CommandTask;
  classes: CardClass[];
  /** Input features in order (tabular), else empty. */
  features: string[];
  input: DeclaredTensor;
  /** Required outputs; `label` (int64 [N]) may also be present for classification. */
  outputs: DeclaredTensor[];
  /** Image side for detection when the model leaves it symbolic (dataset.json imageSize). */
  imageSize: number;
  trainRows: number;
  valRows: number;
}

export const TASK_OF: Record<string, CommandTask> = {
  'skin-detection': 'object-detection',
  'skin-type': 'image-classification',
  'context-correction': 'tabular-classification',
};

async function readJson(abs: string, display: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(abs, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing: the dep is not a prepared-data folder' : (error as Error).message;
    throw new DataError(`cannot read: ${why}`, { file: display });
  }
}

/** The declared task of `model`, with classes and row counts from the prepared folder. */
export async function taskSpec(model: string, dataAbs: string, dataRel: string, target: string, signal: AbortSignal): Promise<TaskSpec> {
  const task = TASK_OF[model];
  if (!task) throw new DataError(`unknown model \`${model}\``);
  const dataset = await readJson(join(dataAbs, 'dataset.json'), join(dataRel, 'dataset.json'));
  const counts = (dataset.counts ?? {}) as Record<string, unknown>;
  const trainRows = Number(counts.train);
  const valRows = Number(counts.val);
  if (!(trainRows >= 1) || !(valRows >= 1)) throw new DataError('dataset.json: `counts` needs train and val rows ≥ 1', { file: join(dataRel, 'dataset.json') });
  const base = { model, task, trainRows, valRows };
  if (task === 'tabular-classification') {
    if (dataset.task !== 'tabular') throw new DataError(`${model} trains on prepared tabular data; this folder is task \`${String(dataset.task)}\``, { file: join(dataRel, 'dataset.json') });
    const schema = await readJson(join(dataAbs, 'schema.json'), join(dataRel, 'schema.json'));
    const features = Array.isArray(schema.features) ? (schema.features as string[]) : [];
    if (!features.length) throw new DataError('schema.json has no `features` list', { file: join(dataRel, 'schema.json') });
    const train = await readNumericTable(join(dataAbs, 'train.csv'), join(dataRel, 'train.csv'), { features, target, targetRequired: true, allowMissing: true, keepIds: false, signal });
    const classes = classesFromTargets(train.targets ?? []);
    if (classes.length < 2) throw new DataError(`training data has ${classes.length} class(es); a classifier needs two or more`, { file: join(dataRel, 'train.csv') });
    return {
      ...base,
      classes,
      features,
      input: { name: 'input', dtype: 'float32', shape: ['N', features.length] },
      outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['N', classes.length] }],
      imageSize: 0,
    };
  }
  const names = Array.isArray(dataset.classNames) ? (dataset.classNames as string[]) : [];
  const wantTask = task === 'object-detection' ? 'detection' : 'classification';
  if (dataset.task !== wantTask) throw new DataError(`${model} trains on prepared ${wantTask} data; this folder is task \`${String(dataset.task)}\``, { file: join(dataRel, 'dataset.json') });
  if (names.length < 1) throw new DataError('dataset.json has no `classNames`', { file: join(dataRel, 'dataset.json') });
  const classes = names.map((name, index) => ({ index, id: index, name }));
  if (task === 'image-classification') {
    return {
      ...base,
      classes,
      features: [],
      input: { name: 'input', dtype: 'float32', shape: ['N', 3, 224, 224] },
      outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['N', classes.length] }],
      imageSize: 224,
    };
  }
  const size = Number(dataset.imageSize) || 640;
  return {
    ...base,
    classes,
    features: [],
    // S: a fixed square side; A: the anchor count (fixed or symbolic).
    input: { name: 'images', dtype: 'float32', shape: ['N', 3, 'S', 'S'] },
    outputs: [{ name: 'output0', dtype: 'float32', shape: ['N', 4 + classes.length, 'A'] }],
    imageSize: size,
  };
}

export interface RunCommandTrainerOptions {
  command: string;
  spec: TaskSpec;
  /** Absolute prepared-data folder and the empty output folder. */
  dataDir: string;
  outDir: string;
  /** Output folder as shown in messages. */
  outDisplay: string;
  /** Where to write the params JSON the program reads. */
  paramsFile: string;
  params: Record<string, number | string | boolean | null>;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  timeoutMs: number;
  logger: Logger;
  signal: AbortSignal;
}

export interface CommandTrainerResult {
  metrics: Record<string, number>;
  onnxSha256: string;
  onnxBytes: number;
  /** The checked interface, as it goes into the card. */
  input: DeclaredTensor;
  outputs: DeclaredTensor[];
}

/** Run the program (clause 1), then check its outputs (clauses 2–5). Throws naming the clause. */
export async function runCommandTrainer(o: RunCommandTrainerOptions): Promise<CommandTrainerResult> {
  await mkdir(o.outDir, { recursive: true });
  if ((await readdir(o.outDir)).length) throw new Error(`${o.outDisplay}: the output folder is not empty`);
  await writeFile(
    o.paramsFile,
    JSON.stringify({ model: o.spec.model, task: o.spec.task, classes: o.spec.classes, features: o.spec.features, input: o.spec.input, outputs: o.spec.outputs, imageSize: o.spec.imageSize, params: o.params }, null, 2) + '\n',
  );
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.env)) if (v !== undefined) env[k] = v;
  Object.assign(env, { SKINTWIN_DATA: o.dataDir, SKINTWIN_PARAMS: o.paramsFile, SKINTWIN_OUT: o.outDir });

  const stop = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, o.timeoutMs);
  const onAbort = (): void => stop.abort();
  o.signal.addEventListener('abort', onAbort, { once: true });
  let code: number;
  try {
    code = await runShell(o.command, { cwd: o.cwd, env, logger: o.logger, signal: stop.signal });
  } catch (error) {
    if (error instanceof InterruptedError && timedOut && !o.signal.aborted) {
      throw new Error(`${CONTRACT.exit}: the trainer ran past its timeout (${formatMs(o.timeoutMs)}) and was killed`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onAbort);
  }
  if (code !== 0) throw new Error(`${CONTRACT.exit}: the trainer exited with code ${code}`);
  return checkOutputs(o.outDir, o.outDisplay, o.spec);
}

function formatMs(ms: number): string {
  return ms >= 60_000 ? `${ms / 60_000} min` : `${ms} ms`;
}

/** Clauses 2–5 on a folder the program wrote. */
export async function checkOutputs(outDir: string, outDisplay: string, spec: TaskSpec): Promise<CommandTrainerResult> {
  const onnxPath = join(outDir, 'model.onnx');
  const onnxShown = `${outDisplay}/model.onnx`;
  const metricsShown = `${outDisplay}/metrics.json`;
  if (!(await exists(onnxPath))) throw new DataError(`${CONTRACT.model}: missing: the trainer must write model.onnx into $SKINTWIN_OUT`, { file: onnxShown });
  if (!(await exists(join(outDir, 'metrics.json')))) throw new DataError(`${CONTRACT.metrics}: missing: the trainer must write metrics.json into $SKINTWIN_OUT`, { file: metricsShown });
  const metrics = await readMetrics(join(outDir, 'metrics.json'), metricsShown);

  const ort = await loadOrt();
  const bytes = await readFile(onnxPath);
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (error) {
    throw new DataError(`${CONTRACT.model}: not an ONNX model onnxruntime can load: ${(error as Error).message.split('\n')[0]}`, { file: onnxShown });
  }
  try {
    const iface = checkInterface(session, spec, onnxShown);
    await smoke(ort, session, spec, iface, onnxShown);
    return { metrics, onnxSha256: await sha256File(onnxPath), onnxBytes: (await stat(onnxPath)).size, input: iface.input, outputs: iface.outputs };
  } finally {
    await session.release();
  }
}

async function readMetrics(abs: string, shown: string): Promise<Record<string, number>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(abs, 'utf8'));
  } catch (error) {
    throw new DataError(`${CONTRACT.metrics}: not valid JSON: ${(error as Error).message}`, { file: shown });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new DataError(`${CONTRACT.metrics}: must be a JSON object of numbers, e.g. {"val_accuracy": 0.9}`, { file: shown });
  const entries = Object.entries(value as Record<string, unknown>);
  if (!entries.length) throw new DataError(`${CONTRACT.metrics}: holds no metrics`, { file: shown });
  for (const [k, v] of entries) {
    // JSON cannot hold NaN: Python's json.dump writes it as a bare NaN, which fails the parse above.
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DataError(`${CONTRACT.metrics}: \`${k}\` is ${JSON.stringify(v)}, not a finite number`, { file: shown });
  }
  return Object.fromEntries(entries) as Record<string, number>;
}

type Meta = { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] };

const show = (shape: readonly (number | string)[]): string => `[${shape.join(', ')}]`;

/** Whether a declared model dim is dynamic (symbolic, or unknown). */
const dynamic = (d: number | string | undefined): boolean => typeof d !== 'number' || d <= 0;

function checkInterface(session: import('onnxruntime-node').InferenceSession, spec: TaskSpec, shown: string): { input: DeclaredTensor; outputs: DeclaredTensor[]; side: number } {
  const fail = (why: string): never => {
    throw new DataError(`${CONTRACT.interface}: ${why}`, { file: shown, hint: `${spec.model} is ${spec.task}: input ${spec.input.name} ${show(spec.input.shape)}, output ${spec.outputs.map((t) => `${t.name} ${show(t.shape)}`).join(', ')}` });
  };
  const inputs = session.inputMetadata as readonly Meta[];
  if (inputs.length !== 1) fail(`the model has ${inputs.length} inputs (${inputs.map((m) => m.name).join(', ')}), expected one, \`${spec.input.name}\``);
  const inp = inputs[0]!;
  if (inp.name !== spec.input.name) fail(`input is named \`${inp.name}\`, expected \`${spec.input.name}\``);
  if (!inp.isTensor || inp.type !== 'float32') fail(`input \`${inp.name}\` is ${inp.type ?? 'not a tensor'}, expected float32`);
  const shape = [...(inp.shape ?? [])];
  const want = spec.input.shape;
  let side = spec.imageSize;
  const badIn = (): never => fail(`input \`${inp.name}\` has shape ${show(shape)}, expected ${show(want)}`);
  if (shape.length !== want.length) badIn();
  shape.forEach((d, i) => {
    const w = want[i]!;
    if (i === 0) return; // the batch: any size
    if (typeof w === 'number') {
      if (d !== w) badIn();
    } else if (w === 'S') {
      // The image side must be fixed and square.
      if (dynamic(d) || (i === 3 && d !== shape[2])) badIn();
      side = d as number;
    }
  });
  const batch = shape[0];
  const fixedBatch = dynamic(batch) ? undefined : (batch as number);
  if (spec.task === 'object-detection' && fixedBatch !== undefined && fixedBatch !== 1) badIn();

  const outputs = session.outputMetadata as readonly Meta[];
  const required = spec.outputs.map((t) => t.name);
  const allowed = spec.task === 'object-detection' ? required : [...required, 'label'];
  for (const m of outputs) if (!allowed.includes(m.name)) fail(`unexpected output \`${m.name}\`; outputs must be ${allowed.map((n) => `\`${n}\``).join(', ')}`);
  const declaredOuts: DeclaredTensor[] = [];
  for (const t of spec.outputs) {
    const m = outputs.find((o) => o.name === t.name);
    if (!m) fail(`no output \`${t.name}\` (outputs: ${outputs.map((o) => o.name).join(', ') || 'none'})`);
    checkOutput(m!, t, fixedBatch, fail);
    declaredOuts.push({ ...t, shape: [...(m!.shape ?? t.shape)] });
  }
  const label = outputs.find((o) => o.name === 'label');
  if (label) {
    const t: DeclaredTensor = { name: 'label', dtype: 'int64', shape: ['N'] };
    checkOutput(label, t, fixedBatch, fail);
    declaredOuts.push({ ...t, shape: [...(label.shape ?? t.shape)] });
  }
  return { input: { ...spec.input, shape: [...shape] }, outputs: declaredOuts, side };
}

function checkOutput(m: Meta, t: DeclaredTensor, fixedBatch: number | undefined, fail: (why: string) => never): void {
  if (!m.isTensor || m.type !== t.dtype) fail(`output \`${m.name}\` is ${m.type ?? 'not a tensor'}, expected ${t.dtype}`);
  const shape = m.shape ?? [];
  const bad = (): never => fail(`output \`${m.name}\` has shape ${show(shape)}, expected ${show(t.shape)}`);
  if (shape.length !== t.shape.length) bad();
  shape.forEach((d, i) => {
    const w = t.shape[i]!;
    if (i === 0) {
      if (!dynamic(d) && fixedBatch !== undefined && d !== fixedBatch) bad();
      if (!dynamic(d) && fixedBatch === undefined) bad(); // a fixed output batch for a dynamic input batch
    } else if (typeof w === 'number' && d !== w) bad();
  });
}

/** Seeded uniform [0, 1) values: the same smoke input on every run. */
function seeded(n: number, seed = 42): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

async function smoke(
  ort: typeof import('onnxruntime-node'),
  session: import('onnxruntime-node').InferenceSession,
  spec: TaskSpec,
  iface: { input: DeclaredTensor; outputs: DeclaredTensor[]; side: number },
  shown: string,
): Promise<void> {
  const fail = (why: string): never => {
    throw new DataError(`${CONTRACT.smoke}: ${why}`, { file: shown });
  };
  const b0 = iface.input.shape[0];
  const batch = dynamic(b0) ? 2 : (b0 as number);
  const dims = iface.input.shape.map((d, i) => (i === 0 ? batch : dynamic(d) ? iface.side : (d as number)));
  const data = seeded(dims.reduce((a, b) => a * b, 1));
  let result: Record<string, import('onnxruntime-node').Tensor>;
  try {
    result = await session.run({ [iface.input.name]: new ort.Tensor('float32', data, dims) });
  } catch (error) {
    return fail(`running the model on a ${show(dims)} input failed: ${(error as Error).message.split('\n')[0]}`);
  }
  for (const t of iface.outputs) {
    const out = result[t.name]!;
    const want = t.shape.map((d, i) => (i === 0 ? batch : d));
    const got = [...out.dims];
    const fits = got.length === want.length && got.every((d, i) => typeof want[i] !== 'number' || d === want[i]);
    if (!fits) fail(`output \`${t.name}\` came out ${show(got)} for a ${show(dims)} input, expected ${show(want)}`);
    if (t.dtype === 'int64') {
      const labels = out.data as BigInt64Array;
      for (const v of labels) if (!spec.classes.some((c) => BigInt(c.id) === v)) fail(`output \`label\` holds ${v}, not a class id`);
      continue;
    }
    const values = out.data as Float32Array;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) fail(`output \`${t.name}\` holds ${values[i]} at index ${i}`);
    if (t.name === 'probabilities') {
      const C = spec.classes.length;
      for (let r = 0; r < batch; r++) {
        let sum = 0;
        for (let c = 0; c < C; c++) {
          const p = values[r * C + c]!;
          if (p < -PROBABILITY_TOLERANCE || p > 1 + PROBABILITY_TOLERANCE) fail(`\`probabilities\` row ${r} holds ${p}: outputs must be probabilities (end the graph with a Softmax), not logits`);
          sum += p;
        }
        if (Math.abs(sum - 1) > PROBABILITY_TOLERANCE) fail(`\`probabilities\` row ${r} sums to ${sum}, not 1 within ${PROBABILITY_TOLERANCE}: end the graph with a Softmax`);
      }
    }
  }
}

export interface CommandCardOptions {
  spec: TaskSpec;
  result: CommandTrainerResult;
  command: string;
  params: Record<string, number | string | boolean | null>;
  dataPath: string;
  dataHash: { sha256: string; files: number };
  commit: string | null;
  startedAt: Date;
  finishedAt: Date;
}

/** The card of a command-trained model, checked against the schema, written beside model.onnx. */
export async function writeCommandCard(outDir: string, o: CommandCardOptions): Promise<Record<string, unknown>> {
  const byName = new Map(o.result.outputs.map((t) => [t.name, t]));
  const card = {
    format: MODEL_CARD_FORMAT,
    version: 1,
    model: o.spec.model,
    task: o.spec.task,
    createdAt: o.finishedAt.toISOString(),
    classes: o.spec.classes,
    input: { ...o.result.input, features: o.spec.features },
    preprocessing: { type: 'trainer-defined', description: 'Chosen by the trainer program; see its documentation' },
    output: o.spec.task === 'object-detection' ? { detections: byName.get('output0') } : { probabilities: byName.get('probabilities'), ...(byName.has('label') ? { label: byName.get('label') } : {}) },
    trainer: { name: 'command', command: o.command, params: o.params },
    trainingData: { path: o.dataPath, ...o.dataHash, trainRows: o.spec.trainRows, valRows: o.spec.valRows },
    code: { commit: o.commit },
    training: { startedAt: o.startedAt.toISOString(), seconds: (o.finishedAt.getTime() - o.startedAt.getTime()) / 1000, executionProvider: 'trainer program' },
    metrics: { reported: o.result.metrics },
    featureImportance: [],
    onnx: { file: 'model.onnx', sha256: o.result.onnxSha256, bytes: o.result.onnxBytes },
  };
  const problems = modelCardProblems(card);
  if (problems.length) throw new Error(`model card does not match model-card.schema.json: ${problems.join('; ')}`);
  await writeJsonAtomic(join(outDir, MODEL_CARD_FILE), card);
  return card;
}
