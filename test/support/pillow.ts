// Pillow as a reference implementation: the Python that has it (Debian's python3-pil), or
// undefined where it is not installed (tests against it are then skipped, and say so).

import { spawnSync } from 'node:child_process';

function findPillowPython(): string | undefined {
  for (const exe of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(exe, ['-c', 'import PIL, numpy'], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) return exe;
  }
  return undefined;
}

export const pillowPython = findPillowPython();
