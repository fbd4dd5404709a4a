// The bundled entry (dist/cli.js): runs `main` on this process and exits with its code.
// First Ctrl-C asks running stages to stop and clean up; a second one exits at once.

import { ExitCode } from '../core/errors.ts';
import { main } from './main.ts';

const controller = new AbortController();
let interrupts = 0;
const onSignal = (): void => {
  interrupts++;
  if (interrupts > 1) process.exit(ExitCode.interrupted);
  process.stderr.write('\nstopping: waiting for running stages to clean up (Ctrl-C again to quit now)\n');
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  isTTY: process.stderr.isTTY === true,
  ...(process.stderr.columns ? { columns: process.stderr.columns } : {}),
  signal: controller.signal,
});
process.exitCode = controller.signal.aborted ? ExitCode.interrupted : code;
