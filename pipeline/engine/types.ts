// The engine's public API types: what the CLI and the actions call (implemented in index.ts).

import type { Logger } from '../core/logger.ts';
import type { RemoteCache } from '../core/ports.ts';
import type { AnyStageKind, Settings } from '../core/stage.ts';

export interface StageDefinition {
  name: string;
  kind: AnyStageKind;
  /** Parsed, typed params (defaults applied, overrides applied). */
  params: Record<string, unknown>;
  deps: string[];
  outs: string[];
  /** Names of the stages whose outs this stage depends on. */
  upstream: string[];
  /** Optional one-line description from pipeline.yaml. */
  desc?: string;
}

export interface Pipeline {
  /** Absolute repository root. */
  root: string;
  /** pipeline.yaml path relative to root. */
  file: string;
  settings: Settings;
  stages: ReadonlyMap<string, StageDefinition>;
  /** A topological order of all stages. */
  order: readonly string[];
}

export interface LoadOptions {
  root: string;
  /** Path of pipeline.yaml relative to root (default `pipeline/pipeline.yaml`). */
  file?: string;
  /** Param overrides per stage (CLI flags, action inputs): raw values, parsed like the YAML. */
  overrides?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Stage kinds by name (default: the registry in pipeline/stages.ts). A seam for tests and plugins. */
  kinds?: ReadonlyMap<string, AnyStageKind>;
}

export type StaleReason =
  | { type: 'never-run' }
  | { type: 'forced' }
  | { type: 'dep-changed'; path: string }
  | { type: 'param-changed'; param: string }
  | { type: 'code-changed' }
  | { type: 'out-missing'; path: string }
  | { type: 'out-changed'; path: string }
  | { type: 'upstream-stale'; stage: string };

export interface StageStatus {
  stage: string;
  kind: string;
  /** `restorable`: stale locally but the cache holds outs for exactly these inputs. */
  state: 'up-to-date' | 'stale' | 'restorable';
  reasons: StaleReason[];
}

export interface EngineOptions {
  logger: Logger;
  signal?: AbortSignal;
  remoteCache?: RemoteCache;
  env?: Readonly<Record<string, string | undefined>>;
  now?: () => Date;
  /** Max stages running at once (default: settings.jobs). */
  jobs?: number;
  /**
   * Folder holding pipeline/core and the kinds' `codePaths` folders, for code versions
   * (default: the project's pipeline/ folder, found from the engine's own location).
   */
  codeRoot?: string;
}

export interface RunOptions extends EngineOptions {
  /** Stages to bring up to date (default: all). */
  targets?: readonly string[];
  /** Run targets even when up to date. */
  force?: boolean;
  /** Say what would happen, change nothing. */
  dryRun?: boolean;
  /** Also bring the targets' upstream stages up to date (default true). */
  upstream?: boolean;
}

export type StageAction = 'ran' | 'skipped' | 'restored' | 'would-run' | 'would-restore' | 'failed' | 'not-run';

export interface StageRun {
  stage: string;
  kind: string;
  action: StageAction;
  reasons: StaleReason[];
  durationMs: number;
  outputs: Record<string, string>;
  summary: string;
  reports: string[];
  outs: string[];
  error?: string;
}

export interface ReproReport {
  ok: boolean;
  /** True for `dryRun`: nothing was changed. */
  dryRun: boolean;
  stages: StageRun[];
}
