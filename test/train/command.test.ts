import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/core/fs.ts';
import { loadPipeline, repro } from '../../pipeline/engine/index.ts';
import { DataType, encodeModel, floatTensor, type OnnxNode, type OnnxValueInfo } from '../../pipeline/onnx/model.ts';
import { modelCardProblems } from '../../pipeline/train/card.ts';
import { runCommandTrainer, taskSpec, writeCommandCard, type TaskSpec } from '../../pipeline/train/command.ts';
import { detectorModel } from '../inference/models.ts';
import { snapshot } from '../engine/helpers.ts';
import { RecordingLogger } from '../support/logger.ts';
import { fusionRows, prepareFusion } from './stage-fixtures.ts';

const DEP = 'data/processed/fusion';
const OUT = 'models/context-correction';

let base: string;
let prepared: string;
let fusion: TaskSpec;

/** A tabular classifier: Softmax(input · W + b), W `[F, C]`. */
function tabularModel(o: { features: number; classes: number; inputShape?: (number | string)[]; outShape?: (number | string)[]; nan?: boolean; logits?: boolean; outName?: string }): Uint8Array {
  const { features: F, classes: C } = o;
  const w = Array.from({ length: F * C }, (_, i) => (o.nan && i === 0 ? NaN : ((i * 7) % 5) / 10 - 0.2));
  const nodes: OnnxNode[] = [
    { opType: 'MatMul', inputs: ['input', 'W'], outputs: ['xw'], attributes: [] },
    { opType: 'Add', inputs: ['xw', 'b'], outputs: [o.logits ? (o.outName ?? 'probabilities') : 'z'], attributes: [] },
  ];
  if (!o.logits) nodes.push({ opType: 'Softmax', inputs: ['z'], outputs: [o.outName ?? 'probabilities'], attributes: [{ name: 'axis', type: 'int', value: 1 }] });
  const inputs: OnnxValueInfo[] = [{ name: 'input', elemType: DataType.FLOAT, shape: o.inputShape ?? ['N', F] }];
  const outputs: OnnxValueInfo[] = [{ name: o.outName ?? 'probabilities', elemType: DataType.FLOAT, shape: o.outShape ?? ['N', C] }];
  return encodeModel({
    irVersion: 8,
    opsets: [{ domain: '', version: 17 }],
    producerName: 'skintwin-test',
    graph: { name: 'g', nodes, inputs, outputs, initializers: [floatTensor('W', [F, C], w), floatTensor('b', [C], new Array(C).fill(0.1))] },
  });
}

/** A trainer program: copies $SRC_MODEL to model.onnx and writes $METRICS as metrics.json. */
const COPY = `cp "$SRC_MODEL" "$SKINTWIN_OUT/model.onnx" && printf '%s' "$METRICS" > "$SKINTWIN_OUT/metrics.json"`;

async function runTrainer(spec: TaskSpec, o: { command?: string; model?: Uint8Array; metrics?: string; timeoutMs?: number; signal?: AbortSignal }) {
  const dir = await mkdtemp(join(base, 'run-'));
  const src = join(dir, 'src.onnx');
  if (o.model) await writeFile(src, o.model);
  const logger = new RecordingLogger();
  const outDir = join(dir, 'out');
  const run = runCommandTrainer({
    command: o.command ?? COPY,
    spec,
    dataDir: prepared,
    outDir,
    outDisplay: 'models/m',
    paramsFile: join(dir, 'params.json'),
    params: { command: o.command ?? COPY },
    cwd: dir,
    env: { PATH: process.env.PATH, SRC_MODEL: src, METRICS: o.metrics ?? '{"val_accuracy": 0.9, "val_log_loss": 0.3}' },
    timeoutMs: o.timeoutMs ?? 30_000,
    logger,
    signal: o.signal ?? new AbortController().signal,
  });
  return { run, logger, outDir, dir };
}

async function failure(spec: TaskSpec, o: Parameters<typeof runTrainer>[1]): Promise<string> {
  const { run } = await runTrainer(spec, o);
  const error = await run.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(error, 'the run should fail').toBeInstanceOf(Error);
  return error!.message;
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-train-command-'));
  prepared = join(base, 'prepared');
  await prepareFusion(join(base, 'raw'), fusionRows(300), prepared);
  fusion = await taskSpec('context-correction', prepared, DEP, 'target', new AbortController().signal);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('command trainer: the declared task', () => {
  it('context-correction: features from schema.json, classes from the training targets', () => {
    expect(fusion.task).toBe('tabular-classification');
    expect(fusion.input).toEqual({ name: 'input', dtype: 'float32', shape: ['N', 27] });
    expect(fusion.classes.map((c) => c.id)).toEqual([3, 17, 42]);
    expect(fusion.outputs).toEqual([{ name: 'probabilities', dtype: 'float32', shape: ['N', 3] }]);
  });
});

describe('command trainer: a good output', () => {
  it('passes every clause; the program sees the contract env and params; its output streams into the log; the card is valid', async () => {
    const command = `echo "data=$SKINTWIN_DATA"; node -e "const p=require(process.env.SKINTWIN_PARAMS); console.log('task', p.task, p.classes.length, p.input.shape.join('x'))"; echo oops >&2; ${COPY}`;
    const model = tabularModel({ features: 27, classes: 3 });
    const { run, logger, outDir } = await runTrainer(fusion, { command, model });
    const result = await run;
    expect(result.metrics).toEqual({ val_accuracy: 0.9, val_log_loss: 0.3 });
    expect(result.onnxSha256).toBe(sha256(model));
    const lines = logger.lines.map((l) => l.message);
    expect(lines).toContain(`data=${prepared}`);
    expect(lines).toContain('task tabular-classification 3 Nx27');
    expect(lines).toContain('oops');
    const card = await writeCommandCard(outDir, {
      spec: fusion,
      result,
      command,
      params: { command },
      dataPath: DEP,
      dataHash: { sha256: 'a'.repeat(64), files: 3 },
      commit: null,
      startedAt: new Date('2026-01-01T00:00:00Z'),
      finishedAt: new Date('2026-01-01T00:01:00Z'),
    });
    const written = JSON.parse(await readFile(join(outDir, 'model-card.json'), 'utf8')) as Record<string, any>;
    expect(written).toEqual(card);
    expect(modelCardProblems(written)).toEqual([]);
    expect(written.trainer).toEqual({ name: 'command', command, params: { command } });
    expect(written.metrics).toEqual({ reported: { val_accuracy: 0.9, val_log_loss: 0.3 } });
    expect(written.onnx.sha256).toBe(sha256(model));
    expect(written.output.probabilities).toEqual({ name: 'probabilities', dtype: 'float32', shape: ['N', 3] });
    expect(written.training.seconds).toBe(60);
  });

  it('a YOLOv8-layout detector and a skin-type classifier fit their tasks', async () => {
    const det = join(base, 'det');
    await mkdir(det, { recursive: true });
    const classNames = Array.from({ length: 10 }, (_, i) => `c${i}`);
    await writeFile(join(det, 'dataset.json'), JSON.stringify({ task: 'detection', imageSize: 64, classNames, counts: { train: 5, val: 2, test: 1 } }));
    const detSpec = await taskSpec('skin-detection', det, 'det', 'target', new AbortController().signal);
    const detector = detectorModel({ size: 64, anchors: 84, bias: new Array(14 * 84).fill(0.5), batch: 1 });
    const d = await (await runTrainer(detSpec, { model: detector })).run;
    expect(d.input.shape).toEqual([1, 3, 64, 64]);
    expect(d.outputs[0]!.shape).toEqual([1, 14, 84]);
    // Eleven classes declared by the data: the 4 + 10 output no longer fits.
    const detSpec11 = { ...detSpec, classes: [...detSpec.classes, { index: 10, id: 10, name: 'c10' }], outputs: [{ ...detSpec.outputs[0]!, shape: ['N', 15, 'A'] }] };
    expect(await failure(detSpec11, { model: detector })).toMatch(/contract clause 4 \(interface\): output `output0` has shape \[1, 14, 84\], expected \[N, 15, A\]/);

    const cls = join(base, 'cls');
    await mkdir(cls, { recursive: true });
    await writeFile(join(cls, 'dataset.json'), JSON.stringify({ task: 'classification', imageSize: 224, classNames: ['dry', 'normal', 'oily'], counts: { train: 5, val: 2, test: 1 } }));
    const clsSpec = await taskSpec('skin-type', cls, 'cls', 'target', new AbortController().signal);
    const gap: OnnxNode[] = [
      { opType: 'GlobalAveragePool', inputs: ['input'], outputs: ['g'], attributes: [] },
      { opType: 'Flatten', inputs: ['g'], outputs: ['f'], attributes: [] },
      { opType: 'MatMul', inputs: ['f', 'W'], outputs: ['z'], attributes: [] },
      { opType: 'Softmax', inputs: ['z'], outputs: ['probabilities'], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
    ];
    const classifier = (size: number) =>
      encodeModel({
        irVersion: 8,
        opsets: [{ domain: '', version: 17 }],
        producerName: 'skintwin-test',
        graph: {
          name: 'g',
          nodes: gap,
          inputs: [{ name: 'input', elemType: DataType.FLOAT, shape: ['batch', 3, size, size] }],
          outputs: [{ name: 'probabilities', elemType: DataType.FLOAT, shape: ['batch', 3] }],
          initializers: [floatTensor('W', [3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1])],
        },
      });
    expect((await (await runTrainer(clsSpec, { model: classifier(224) })).run).input.shape).toEqual(['batch', 3, 224, 224]);
    expect(await failure(clsSpec, { model: classifier(128) })).toMatch(/contract clause 4 \(interface\): input `input` has shape \[batch, 3, 128, 128\], expected \[N, 3, 224, 224\]/);
  });
});

describe('command trainer: each bad output names its contract clause', () => {
  const good = () => tabularModel({ features: 27, classes: 3 });

  it('missing model.onnx', async () => {
    expect(await failure(fusion, { command: `echo '{"a":1}' > "$SKINTWIN_OUT/metrics.json"` })).toMatch(/models\/m\/model\.onnx: contract clause 2 \(model\.onnx\): missing/);
  });

  it('a file that is not ONNX', async () => {
    const message = await failure(fusion, { model: new TextEncoder().encode('this is not a model, just text\n') });
    expect(message).toMatch(/models\/m\/model\.onnx: contract clause 2 \(model\.onnx\): not an ONNX model onnxruntime can load/);
  });

  it('missing or invalid metrics.json', async () => {
    const cases: [string, string, RegExp][] = [
      ['missing', `cp "$SRC_MODEL" "$SKINTWIN_OUT/model.onnx"`, /contract clause 3 \(metrics\.json\): missing/],
      ['NaN', `${COPY.replace('"$METRICS"', `'{"val_accuracy": NaN}'`)}`, /contract clause 3 \(metrics\.json\): not valid JSON/],
      ['a string', `${COPY.replace('"$METRICS"', `'{"val_accuracy": "0.9"}'`)}`, /contract clause 3 \(metrics\.json\): `val_accuracy` is "0\.9", not a finite number/],
      ['an array', `${COPY.replace('"$METRICS"', `'[0.9]'`)}`, /contract clause 3 \(metrics\.json\): must be a JSON object of numbers/],
      ['null', `${COPY.replace('"$METRICS"', `'{"loss": null}'`)}`, /contract clause 3 \(metrics\.json\): `loss` is null/],
    ];
    for (const [what, command, message] of cases) expect(await failure(fusion, { command, model: good() }), what).toMatch(message);
  });

  it('wrong input shape, wrong output shape, wrong output name', async () => {
    expect(await failure(fusion, { model: tabularModel({ features: 26, classes: 3 }) })).toMatch(
      /contract clause 4 \(interface\): input `input` has shape \[N, 26\], expected \[N, 27\]/,
    );
    expect(await failure(fusion, { model: tabularModel({ features: 27, classes: 4 }) })).toMatch(
      /contract clause 4 \(interface\): output `probabilities` has shape \[N, 4\], expected \[N, 3\]/,
    );
    expect(await failure(fusion, { model: tabularModel({ features: 27, classes: 3, outName: 'probs' }) })).toMatch(
      /contract clause 4 \(interface\): unexpected output `probs`/,
    );
  });

  it('a smoke inference with NaN outputs, or logits instead of probabilities', async () => {
    expect(await failure(fusion, { model: tabularModel({ features: 27, classes: 3, nan: true }) })).toMatch(/contract clause 5 \(smoke inference\): output `probabilities` holds NaN/);
    expect(await failure(fusion, { model: tabularModel({ features: 27, classes: 3, logits: true }) })).toMatch(/contract clause 5 \(smoke inference\): `probabilities` row 0 (holds|sums to)/);
  });

  it('a non-zero exit names the code', async () => {
    expect(await failure(fusion, { command: 'echo training; exit 3', model: good() })).toMatch(/contract clause 1 \(exit\): the trainer exited with code 3/);
  });

  it('a timeout kills the whole process group', async () => {
    // The background sleep holds the output pipe open: the run only ends this soon if the group died.
    const { run } = await runTrainer(fusion, { command: 'sleep 30 & sleep 30', model: good(), timeoutMs: 150 });
    const started = Date.now();
    await expect(run).rejects.toThrow(/contract clause 1 \(exit\): the trainer ran past its timeout \(150 ms\) and was killed/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('abort (Ctrl-C) kills it and reports the interruption, not a contract violation', async () => {
    const ac = new AbortController();
    const dir = await mkdtemp(join(base, 'run-'));
    class AbortOnStart extends RecordingLogger {
      override info(message: string): void {
        super.info(message);
        if (message === 'started') ac.abort();
      }
    }
    const run = runCommandTrainer({
      command: 'echo started; sleep 30 & sleep 30',
      spec: fusion,
      dataDir: prepared,
      outDir: join(dir, 'out'),
      outDisplay: 'models/m',
      paramsFile: join(dir, 'params.json'),
      params: {},
      cwd: dir,
      env: { PATH: process.env.PATH },
      timeoutMs: 60_000,
      logger: new AbortOnStart(),
      signal: ac.signal,
    });
    const started = Date.now();
    await expect(run).rejects.toMatchObject({ name: 'InterruptedError' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('command trainer in the pipeline', () => {
  it('a good trainer publishes the model and card; a failing one leaves the models dir and the lock byte-identical', async () => {
    const root = await mkdtemp(join(base, 'repo-'));
    await mkdir(join(root, DEP), { recursive: true });
    for (const f of ['train.csv', 'val.csv', 'test.csv', 'schema.json', 'dataset.json']) await writeFile(join(root, DEP, f), await readFile(join(prepared, f)));
    await writeFile(join(root, 'good.onnx'), tabularModel({ features: 27, classes: 3 }));
    await writeFile(join(root, 'bad.onnx'), 'not onnx');
    const write = async (src: string) => {
      const command = `cp ${src} "$SKINTWIN_OUT/model.onnx" && echo '{"val_accuracy": 0.75}' > "$SKINTWIN_OUT/metrics.json"`;
      await mkdir(join(root, 'pipeline'), { recursive: true });
      await writeFile(
        join(root, 'pipeline/pipeline.yaml'),
        `stages:\n  train-context-correction:\n    kind: train\n    params: ${JSON.stringify({ model: 'context-correction', trainer: 'command', command })}\n    deps: [${DEP}]\n    outs: [${OUT}]\n`,
      );
    };
    const run = async () => (await repro(await loadPipeline({ root }), { logger: new RecordingLogger(), env: { GITHUB_SHA: 'b'.repeat(40), PATH: process.env.PATH } })).stages[0]!;

    await write('good.onnx');
    const first = await run();
    expect(first.error).toBeUndefined();
    expect(first.action).toBe('ran');
    const card = JSON.parse(await readFile(join(root, OUT, 'model-card.json'), 'utf8')) as Record<string, any>;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card.code.commit).toBe('b'.repeat(40));
    expect(card.trainingData.path).toBe(DEP);

    const before = await snapshot(join(root, OUT));
    const lockBefore = await readFile(join(root, 'pipeline/pipeline.lock'), 'utf8');
    await write('bad.onnx');
    const second = await run();
    expect(second.action).toBe('failed');
    expect(second.error).toMatch(/contract clause 2 \(model\.onnx\)/);
    expect(await snapshot(join(root, OUT))).toEqual(before);
    expect(await readFile(join(root, 'pipeline/pipeline.lock'), 'utf8')).toBe(lockBefore);
  });

  it('trainer: command without a command is an error when the pipeline loads', async () => {
    const root = await mkdtemp(join(base, 'repo-'));
    await mkdir(join(root, 'pipeline'), { recursive: true });
    await writeFile(
      join(root, 'pipeline/pipeline.yaml'),
      `stages:\n  t:\n    kind: train\n    params: {model: skin-type, trainer: command}\n    deps: [data/x]\n    outs: [models/x]\n`,
    );
    await expect(loadPipeline({ root })).rejects.toThrow(/`trainer: command` needs param `command`/);
  });
});
