// `skintwin predict --model <dir>/model.onnx --data table.csv --out preds.jsonl`: per-row class
// probabilities from a tabular model in onnxruntime, in the evaluation stage's predictions format.

import { readFile, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigurationError, DataError, ExitCode } from '../../core/errors.ts';
import { sha256, siblingTempPath } from '../../core/fs.ts';
import { LineWriter } from '../../data/fusion/csv.ts';
import { parseCategoryMap } from '../../data/fusion/schema.ts';
import { readModelCard } from '../../train/card.ts';
import { isFusionHeader, readFusionTable, readHeader, readNumericTable } from '../../train/trainers.ts';
import { printJson } from '../common.ts';
import type { CliCommand } from '../types.ts';

const DEFAULT_BATCH = 4096;

export const predictCommand: CliCommand = {
  name: 'predict',
  summary: 'run a tabular model (model.onnx + its model card) over a CSV and write per-row probabilities as JSON lines',
  usage: 'skintwin predict --model <dir>/model.onnx --data <table.csv> --out <preds.jsonl> [--batch-size n]',
  description:
    'The model card next to model.onnx gives the feature order, the preprocessing (fusion tables are one-hot encoded\n' +
    'as in training) and the class names. Each output line is {"id", "probs": {"<class>": p, …}, "label"}: `id` is the\n' +
    'table\'s `id` column or the CSV line number; `label` (the true class) only when the table has the target column.',
  options: [
    { name: 'model', type: 'string', value: '<model.onnx>', description: 'the ONNX model; model-card.json must be next to it' },
    { name: 'data', type: 'string', value: '<table.csv>', description: 'the rows to score (CSV with a header)' },
    { name: 'out', type: 'string', value: '<preds.jsonl>', description: 'where to write the predictions (replaced atomically)' },
    { name: 'batch-size', type: 'string', value: '<n>', description: `rows per onnxruntime call (default ${DEFAULT_BATCH})` },
    { name: 'json', type: 'boolean', description: 'print a summary as JSON on stdout' },
    { name: 'help', type: 'boolean', description: 'show this help' },
  ],
  async run(ctx) {
    const flag = (name: string): string => {
      const v = ctx.args.flags[name];
      if (typeof v !== 'string' || v === '') throw new ConfigurationError(`\`predict\` needs \`--${name}\``, { field: name });
      return v;
    };
    if (ctx.args.positionals.length) throw new ConfigurationError(`\`predict\` takes no positional arguments, got \`${ctx.args.positionals[0]}\``);
    const modelArg = flag('model');
    const data = flag('data');
    const out = flag('out');
    const batchRaw = ctx.args.flags['batch-size'];
    const batch = batchRaw === undefined ? DEFAULT_BATCH : Number(batchRaw);
    if (!Number.isInteger(batch) || batch < 1) throw new ConfigurationError(`\`--batch-size\` must be an integer ≥ 1, got \`${String(batchRaw)}\``, { field: 'batch-size' });

    const modelPath = resolve(ctx.io.cwd, modelArg);
    let bytes: Buffer;
    try {
      bytes = await readFile(modelPath);
    } catch {
      throw new ConfigurationError('model file not found', { file: modelArg, field: 'model' });
    }
    const card = await readModelCard(modelPath, modelArg);
    if (card.task !== 'tabular-classification') throw new ConfigurationError(`\`predict\` runs tabular models; this card says \`${card.task}\``, { file: modelArg });
    if (sha256(bytes) !== card.onnx.sha256) {
      throw new DataError('model-card.json does not belong to this model.onnx (sha256 differs): retrain or copy both files together', { file: modelArg });
    }

    const probabilities = card.output.probabilities;
    if (!('target' in card.preprocessing) || !probabilities) {
      throw new ConfigurationError(`the card's preprocessing is \`${card.preprocessing.type}\`: \`predict\` needs a tabular card (fusion-one-hot or numeric) with a probabilities output`, { file: modelArg });
    }
    const dataPath = resolve(ctx.io.cwd, data);
    const target = card.preprocessing.target;
    const signal = ctx.io.signal;
    const header = await readHeader(dataPath, data);
    const table =
      card.preprocessing.type === 'fusion-one-hot' && isFusionHeader(header, target)
        ? await readFusionTable(dataPath, data, {
            target,
            targetRequired: false,
            categoryMap: parseCategoryMap(Object.fromEntries(Object.entries(card.preprocessing.categoryMap).flatMap(([c, m]) => Object.entries(m).map(([v, l]) => [`${c}.${v}`, l])))),
            ...(signal ? { signal } : {}),
          })
        : await readNumericTable(dataPath, data, { features: card.input.features, target, targetRequired: false, allowMissing: true, ...(signal ? { signal } : {}) });

    const F = card.input.features.length;
    const C = card.classes.length;
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const outPath = resolve(ctx.io.cwd, out);
    const tmp = siblingTempPath(outPath);
    let writer: LineWriter;
    try {
      writer = await LineWriter.open(tmp);
    } catch (error) {
      await session.release();
      throw new ConfigurationError(`cannot write the predictions (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: out, field: 'out' });
    }
    const names = card.classes.map((c) => c.name);
    const byTarget = new Map(card.classes.flatMap((c) => [[c.name, c.name], [String(c.id), c.name]] as [string, string][]));
    const progress = ctx.logger.progress('predict', table.nRows, 'rows');
    try {
      for (let start = 0; start < table.nRows; start += batch) {
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        const n = Math.min(batch, table.nRows - start);
        let result;
        try {
          result = await session.run({ [card.input.name]: new ort.Tensor('float32', table.x.subarray(start * F, (start + n) * F), [n, F]) });
        } catch (error) {
          throw new DataError(`onnxruntime rejected the input (${n} rows × ${F} features, from the card): ${(error as Error).message}`, { file: modelArg });
        }
        const p = result[probabilities.name]?.data as Float32Array | undefined;
        if (!p || p.length !== n * C) throw new DataError(`model output \`${probabilities.name}\` is not ${n} × ${C} probabilities`, { file: modelArg });
        for (let r = 0; r < n; r++) {
          const probs: Record<string, number> = {};
          for (let k = 0; k < C; k++) probs[names[k]!] = p[r * C + k]!;
          const line: { id: string; probs: Record<string, number>; label?: string } = { id: table.ids[start + r]!, probs };
          if (table.targets) {
            const t = table.targets[start + r]!;
            line.label = byTarget.get(t) ?? byTarget.get(String(Number(t))) ?? t;
          }
          await writer.write(JSON.stringify(line));
        }
        progress.tick(n);
      }
      await writer.close();
      await rename(tmp, outPath);
    } catch (error) {
      await writer.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw error;
    } finally {
      progress.done();
      await session.release();
    }
    ctx.logger.close();
    if (ctx.args.flags.json) printJson(ctx.io, { command: 'predict', ok: true, rows: table.nRows, classes: names, out: outPath });
    else ctx.io.stdout.write(`Wrote ${table.nRows} predictions (${C} classes) to ${out}.\n`);
    return ExitCode.ok;
  },
};
