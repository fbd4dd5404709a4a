// pipeline.lock: per stage, what its last successful run saw and produced (kind, code version,
// params, dep hashes, out hashes). Deterministic, sorted, diff-friendly YAML, written atomically.

import { readFile } from 'node:fs/promises';
import { parseDocument, stringify } from 'yaml';
import { ConfigurationError } from '../core/errors.ts';
import { sha256, writeFileAtomic } from '../core/fs.ts';

export interface LockedOut {
  hash: string;
  files: number;
  bytes: number;
}

export interface LockEntry {
  kind: string;
  code: string;
  params: { hash: string; values: Record<string, unknown> };
  deps: Record<string, string>;
  outs: Record<string, LockedOut>;
}

export interface LockFile {
  schema: 1;
  stages: Record<string, LockEntry>;
}

const HEADER = '# Written by `skintwin repro` after each successful stage: do not edit by hand.\n';

/** The lock path next to the pipeline file: pipeline/pipeline.yaml → pipeline/pipeline.lock. */
export function lockPathFor(pipelineFile: string): string {
  return pipelineFile.replace(/\.ya?ml$/i, '') + '.lock';
}

export async function readLock(abs: string, display: string): Promise<LockFile> {
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch {
    return { schema: 1, stages: {} };
  }
  const doc = parseDocument(text);
  if (doc.errors.length) {
    throw new ConfigurationError(`lock file is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, {
      file: display,
      hint: 'resolve the merge conflict, or delete the file to re-run every stage',
    });
  }
  const data = doc.toJS() as Partial<LockFile> | null;
  if (!data || typeof data !== 'object') return { schema: 1, stages: {} };
  if (data.schema !== 1) throw new ConfigurationError(`lock file has unknown schema ${String(data.schema)}`, { file: display });
  return { schema: 1, stages: data.stages ?? {} };
}

/** Canonical JSON (sorted keys, no undefined): the basis of every params hash. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortDeep(v);
    }
    return out;
  }
  return value;
}

export function paramsHash(params: Record<string, unknown>): string {
  return sha256(canonicalJson(params));
}

export function renderLock(lock: LockFile): string {
  return HEADER + stringify(sortDeep(lock), { sortMapEntries: true, lineWidth: 0 });
}

export async function writeLock(abs: string, lock: LockFile): Promise<void> {
  await writeFileAtomic(abs, renderLock(lock));
}
