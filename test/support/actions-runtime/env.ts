// The toolkit libraries read process.env at call time: tests set the runtime variables around a
// call and put the previous values back afterwards, so no test leaks env into another.

/** Variables that make the toolkit behave as on GHES or point it elsewhere; cleared unless given. */
const isolated = ['GITHUB_SERVER_URL', 'ACTIONS_CACHE_URL', 'ACTIONS_CACHE_MODE', 'ACTIONS_STEP_DEBUG'];

/** Run `fn` with `vars` set in process.env (undefined deletes), then restore every touched variable. */
export async function withProcessEnv<T>(
  vars: Readonly<Record<string, string | undefined>>,
  fn: () => Promise<T>,
): Promise<T> {
  const names = new Set([...isolated, ...Object.keys(vars)]);
  const saved = new Map<string, string | undefined>();
  for (const name of names) saved.set(name, process.env[name]);
  for (const name of names) {
    const value = vars[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}
