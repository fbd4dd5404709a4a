// Loading ONNX models for inference: onnxruntime-node loaded lazily, execution provider chosen
// (CUDA when asked for or available, else CPU, said in the log), inputs checked against what the
// caller feeds so a wrong model fails with its file name instead of deep inside onnxruntime.

import { availableParallelism } from 'node:os';
import { ConfigurationError, DataError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { InferenceSession, Tensor } from 'onnxruntime-node';

export type ProviderChoice = 'auto' | 'cpu' | 'cuda';

/** One expected input: name (undefined: whatever the model's only input is called) and shape. */
export interface ExpectedInput {
  name?: string;
  /** A number must match; `null` accepts any size (dynamic or fixed). */
  shape: (number | null)[];
}

export interface LoadModelOptions {
  /** Absolute path of the .onnx file. */
  path: string;
  /** Path as shown in messages (relative to the repository root). */
  display: string;
  /** What the caller will feed; checked against the model's declared inputs. */
  inputs: ExpectedInput[];
  provider?: ProviderChoice;
  /** Threads per operator; default: the cores this process may use. */
  threads?: number;
  logger: Logger;
  /** Whether to try CUDA under `auto` (default: `cudaAvailable()`). */
  cudaProbe?: () => Promise<boolean>;
  /** Where `inputs` come from (e.g. the model card's path), named in a mismatch message. */
  expectedBy?: string;
}

export interface LoadedModel {
  session: InferenceSession;
  /** The model's input names in the order of `inputs`. */
  inputNames: string[];
  outputNames: readonly string[];
  /** Declared input shapes (a string dim is symbolic, e.g. `batch`). */
  inputShapes: (number | string)[][];
  provider: 'cpu' | 'cuda';
  display: string;
  /** Build a float32 tensor (the Tensor class of the loaded runtime). */
  tensor(data: Float32Array, dims: readonly number[]): Tensor;
}

type Ort = typeof import('onnxruntime-node');
let ortLoaded: Promise<Ort> | undefined;

/** onnxruntime-node, loaded once and only by the stages that run models. */
export async function loadOrt(): Promise<Ort> {
  ortLoaded ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort);
  return ortLoaded;
}

/** Whether onnxruntime here can run CUDA: its CUDA provider is installed and a GPU is visible. */
export async function cudaAvailable(env: Readonly<Record<string, string | undefined>> = process.env): Promise<boolean> {
  const ort = await loadOrt();
  const cuda = ort.listSupportedBackends().find((b) => b.name === 'cuda');
  if (!cuda) return false;
  if (env.CUDA_VISIBLE_DEVICES === '' || env.CUDA_VISIBLE_DEVICES === '-1') return false;
  const { existsSync } = await import('node:fs');
  return existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

/** Session options every model runs with (the execution providers are added by the caller). */
export function sessionOptions(threads: number): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Idle operator threads sleep instead of spinning: image decoding shares these cores.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/**
 * Open a model. `auto` tries CUDA (with CPU for unsupported nodes) only where it is available,
 * and falls back to CPU when the CUDA provider fails to start; `cuda` insists on it. The log
 * says which provider runs.
 */
export async function loadModel(o: LoadModelOptions): Promise<LoadedModel> {
  const ort = await loadOrt();
  const { readFile } = await import('node:fs/promises');
  let bytes: Buffer;
  try {
    bytes = await readFile(o.path);
  } catch (error) {
    throw new DataError(`model not found or unreadable: ${(error as Error).message}`, { file: o.display });
  }
  const threads = o.threads ?? availableParallelism();
  const base = sessionOptions(threads);
  const choice = o.provider ?? 'auto';
  const tryCuda = choice === 'cuda' || (choice === 'auto' && (await (o.cudaProbe ?? cudaAvailable)()));
  let session: InferenceSession | undefined;
  let provider: 'cpu' | 'cuda' = 'cpu';
  if (tryCuda) {
    try {
      session = await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda', 'cpu'] });
      provider = 'cuda';
    } catch (error) {
      if (choice === 'cuda') {
        throw new ConfigurationError(`${o.display}: the CUDA execution provider did not start: ${(error as Error).message}`, {
          field: 'execution-provider',
          hint: 'use `auto` or `cpu` where there is no GPU',
        });
      }
      o.logger.warn(`${o.display}: CUDA execution provider did not start (${(error as Error).message.split('\n')[0]}); running on CPU`);
    }
  }
  if (!session) {
    try {
      session = await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] });
    } catch (error) {
      throw new DataError(`not a model onnxruntime can load: ${(error as Error).message.split('\n')[0]}`, { file: o.display });
    }
  }
  o.logger.info(
    `${o.display}: onnxruntime ${provider === 'cuda' ? 'CUDA (CPU for unsupported nodes)' : `CPU, ${threads} thread(s)`}`,
  );
  try {
    const inputNames = checkInputs(session, o);
    const meta = session.inputMetadata;
    const inputShapes = inputNames.map((n) => {
      const m = meta.find((v) => v.name === n);
      return m && m.isTensor ? [...m.shape] : [];
    });
    return {
      session,
      inputNames,
      outputNames: session.outputNames,
      inputShapes,
      provider,
      display: o.display,
      tensor: (data, dims) => new ort.Tensor('float32', data, dims as number[]),
    };
  } catch (error) {
    await session.release();
    throw error;
  }
}

export function describeShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** Match the expected inputs against the model's; a mismatch is a ConfigurationError naming the model. */
function checkInputs(session: InferenceSession, o: LoadModelOptions): string[] {
  const meta = session.inputMetadata;
  const declared = meta.map((m) => `${m.name} ${m.isTensor ? describeShape(m.shape) : '(not a tensor)'}`).join(', ');
  if (meta.length !== o.inputs.length) {
    throw new ConfigurationError(
      `model ${o.display} has ${meta.length} input(s) (${declared}), expected ${o.inputs.length} (${o.inputs.map((i) => `${i.name ?? 'input'} ${describeShape(i.shape)}`).join(', ')})`,
      { file: o.display },
    );
  }
  return o.inputs.map((want, k) => {
    const m = want.name === undefined ? meta[k]! : meta.find((v) => v.name === want.name);
    if (!m) {
      throw new ConfigurationError(`model ${o.display} has no input \`${want.name}\`; its inputs: ${declared}`, { file: o.display });
    }
    if (!m.isTensor) throw new ConfigurationError(`model ${o.display}: input \`${m.name}\` is not a tensor`, { file: o.display });
    if (m.type !== 'float32') {
      throw new ConfigurationError(`model ${o.display}: input \`${m.name}\` is ${m.type}, expected float32`, { file: o.display });
    }
    const shape = m.shape;
    const fits =
      shape.length === 0 || // shape not recorded in the model: onnxruntime checks at run time
      (shape.length === want.shape.length &&
        want.shape.every((d, i) => d === null || typeof shape[i] !== 'number' || shape[i] === d));
    if (!fits) {
      throw new ConfigurationError(
        `model ${o.display}: input \`${m.name}\` has shape ${describeShape(shape)}, expected ${describeShape(want.shape)}${o.expectedBy ? ` by ${o.expectedBy}` : ''}`,
        { file: o.display, hint: o.expectedBy ? 'the card does not describe this model' : 'is this the right model for this param?' },
      );
    }
    return m.name;
  });
}

/** The fixed batch size a model declares (first input dim), or undefined when it is dynamic. */
export function fixedBatch(model: LoadedModel): number | undefined {
  const d = model.inputShapes[0]?.[0];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** The square spatial size a model declares for NCHW input, or undefined when dynamic. */
export function fixedImageSize(model: LoadedModel): number | undefined {
  const s = model.inputShapes[0];
  const h = s?.[2];
  const w = s?.[3];
  return typeof h === 'number' && h === w ? h : undefined;
}
