// What a stage kind is, what it receives and what it returns. Every stage — run by the CLI,
// by an action, or by a test — goes through these types and the engine in pipeline/engine.

import type { Logger } from './logger.ts';
import type { ParamSpecs, ParamsOf } from './params.ts';
import type { RemoteCache } from './ports.ts';

/** Shared settings from pipeline.yaml's `settings:` block (kebab-case there). */
export interface Settings {
  /** Seed for every stochastic step unless a stage overrides it. */
  seed: number;
  /** Local content-addressed cache directory, relative to the repository root. */
  cacheDir: string;
  /** How many independent stages may run at once. */
  jobs: number;
}

export interface StageContext<P = Record<string, unknown>> {
  /** Stage instance name from pipeline.yaml, e.g. `train-skin-type`. */
  name: string;
  kind: string;
  params: P;
  settings: Settings;
  /** Absolute repository root; every declared path is relative to it. */
  root: string;
  /** Declared dep paths, relative to `root`. */
  deps: readonly string[];
  /** Declared out paths, relative to `root`. */
  outs: readonly string[];
  /** Absolute path to read a file under the root (deps, config). */
  path(relative: string): string;
  /**
   * Absolute staging path where the stage must write the declared out `relative`.
   * The engine swaps staged outs into place only after the stage succeeds.
   */
  out(relative: string): string;
  /** A scratch directory, removed after the stage. */
  tmpDir: string;
  logger: Logger;
  /** Injected clock: tests never sleep. */
  now(): Date;
  /** Aborted on Ctrl-C or job cancellation: long loops check it. */
  signal: AbortSignal;
  /** Environment for credentials (KAGGLE_*, …): read here, never from process.env directly. */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * The remote cache the engine runs with (on runners: the Actions cache), for stages that look up
   * outs the engine itself did not restore, e.g. another branch's model. Absent locally.
   */
  remoteCache?: RemoteCache;
}

export interface StageResult {
  /** Action outputs / CLI JSON fields: every output the kind documents, as strings. */
  outputs: Record<string, string>;
  /** Markdown a person reads: job summary, CLI end-of-run report. */
  summary: string;
  /** Report files written (relative to root), listed at the end of a run. */
  reports?: string[];
}

export interface StageKind<S extends ParamSpecs = ParamSpecs> {
  kind: string;
  /** One line: `--help` and the action's description. */
  title: string;
  params: S;
  /** Outputs the kind always sets, name → description. */
  outputs: Readonly<Record<string, string>>;
  /**
   * Folders under pipeline/ whose source files make up this kind's code version
   * (a change there makes the stage stale). pipeline/core is always included.
   */
  codePaths: readonly string[];
  /** Cross-field checks at load time, after params are parsed. Throw ConfigurationError. */
  validate?(params: ParamsOf<S>, stage: { name: string; deps: readonly string[]; outs: readonly string[] }): void;
  /** Absent while the kind is not built yet: the engine then fails with a clear message. */
  run?(ctx: StageContext<ParamsOf<S>>): Promise<StageResult>;
}

/** Identity helper that keeps the param types of a kind. */
export function defineStage<S extends ParamSpecs>(kind: StageKind<S>): StageKind<S> {
  return kind;
}

export type AnyStageKind = StageKind<ParamSpecs>;

export type { RemoteCache };
