// Ports for side effects that differ between a laptop and a GitHub runner. The adapters for
// GitHub live in actions/ (pipeline/ never imports @actions/*); local ones live in pipeline/.

/**
 * A remote cache for stage outputs (on runners: @actions/cache keyed by the stage's input hash).
 * Infrastructure trouble is never fatal: implementations warn and resolve `false`.
 */
export interface RemoteCache {
  readonly name: string;
  /** Save the directory `dir` (absolute) under `key`. Resolves false when nothing was saved. */
  save(key: string, dir: string): Promise<boolean>;
  /** Restore `key` into `dir` (absolute, same path as at save time). Resolves false on a miss. */
  restore(key: string, dir: string): Promise<boolean>;
}
