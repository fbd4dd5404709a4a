// One model.onnx from a frozen extractor and a trained head: the head's nodes read the extractor's
// feature map; names are checked for clashes; the output folder is checked before any training.

import { access, constants, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { MODEL_CARD_FILE, modelCardProblems, writeModelCard, type ModelCard } from '../card.ts';
import { DataType, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from '../../onnx/index.ts';
import { extractorNames, HEAD_IR_VERSION, IMAGES_INPUT } from './extractor.ts';
import type { FeatureExtractor } from './types.ts';

export interface HeadGraph {
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  outputs: OnnxValueInfo[];
}

/** Extractor + head as one model: input `images` [N, 3, S, S] float32, the head's outputs. */
export function mergeModel(ex: FeatureExtractor, head: HeadGraph, metadata: Record<string, string> = {}): OnnxModel {
  const taken = extractorNames(ex);
  const clash = [...head.nodes.flatMap((n) => n.outputs), ...head.initializers.map((t) => t.name)].filter((n) => taken.has(n));
  if (clash.length) {
    throw new ConfigurationError(`the extractor already defines tensor(s) ${clash.slice(0, 5).map((c) => `\`${c}\``).join(', ')} that the head needs`, {
      field: 'backbone',
      hint: 'rename them in the backbone',
    });
  }
  return {
    irVersion: HEAD_IR_VERSION,
    opsets: [{ domain: '', version: ex.opset }, ...(ex.domains ?? [])],
    producerName: 'skintwin',
    producerVersion: 'head',
    graph: {
      name: 'skintwin-head',
      nodes: [...ex.nodes, ...head.nodes],
      initializers: [...ex.initializers, ...head.initializers],
      inputs: [{ name: IMAGES_INPUT, elemType: DataType.FLOAT, shape: ['N', 3, ex.imageSize, ex.imageSize] }],
      outputs: head.outputs,
    },
    metadata,
  };
}

/**
 * Create the output folder and make sure files can be written there, before hours of work; a
 * folder without write access is a ConfigurationError naming it.
 */
export async function checkWritableOut(outDir: string, outDisplay: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    await access(outDir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigurationError(`cannot write the model there (${code}): the output folder must be writable`, { file: outDisplay, field: 'out' });
  }
}

/** A filesystem error code that means the output folder cannot be written. */
export function isWriteAccessError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return !!code && ['EACCES', 'EPERM', 'ENOTDIR', 'EROFS', 'EEXIST', 'EISDIR', 'ENOSPC'].includes(code);
}

/**
 * Write model.onnx and model-card.json into `outDir`. The card is checked first, so a bad card
 * never leaves a model without one; a folder that cannot be written is a ConfigurationError.
 * Resolves to the card's path.
 */
export async function writeHeadModel(outDir: string, outDisplay: string, onnx: Uint8Array, card: ModelCard): Promise<string> {
  const problems = modelCardProblems(card);
  if (problems.length) throw new Error(`model card does not match model-card.schema.json: ${problems.join('; ')}`);
  const cardPath = join(outDir, MODEL_CARD_FILE);
  try {
    await writeFileAtomic(join(outDir, 'model.onnx'), onnx);
    await writeModelCard(cardPath, card);
  } catch (error) {
    if (isWriteAccessError(error)) {
      throw new ConfigurationError(`cannot write the model there (${(error as NodeJS.ErrnoException).code}): ${(error as Error).message}`, { file: outDisplay, field: 'out' });
    }
    throw error;
  }
  return cardPath;
}
