// Writing a trained gbdt model next to its ONNX export: `model.onnx` and `model.json`, each
// written atomically, with the ONNX file's sha256 for the model card.

import { join } from 'node:path';
import { sha256, writeFileAtomic, writeJsonAtomic } from '../../core/fs.ts';
import type { GbdtModel } from './model.ts';
import { gbdtToOnnx } from './onnx.ts';

export interface SavedGbdt {
  onnxPath: string;
  jsonPath: string;
  /** sha256 of model.onnx, lowercase hex. */
  onnxSha256: string;
  onnxBytes: number;
}

export async function saveGbdt(outDir: string, model: GbdtModel): Promise<SavedGbdt> {
  const onnx = gbdtToOnnx(model);
  const onnxPath = join(outDir, 'model.onnx');
  const jsonPath = join(outDir, 'model.json');
  await writeFileAtomic(onnxPath, onnx);
  await writeJsonAtomic(jsonPath, model);
  return { onnxPath, jsonPath, onnxSha256: sha256(onnx), onnxBytes: onnx.length };
}
