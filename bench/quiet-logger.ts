// The logger benchmarks give the code they time: progress and info stay silent (printing would
// be measured too); warnings and errors still reach stderr.

import type { Logger, Progress } from '../pipeline/core/logger.ts';

export const quietLogger: Logger = {
  debug() {},
  info() {},
  warn: (m) => console.error(`warning: ${m}`),
  error: (m) => console.error(`error: ${m}`),
  group: (_t, fn) => fn(),
  progress: (): Progress => ({ tick() {}, set() {}, done() {} }),
  secret() {},
};
