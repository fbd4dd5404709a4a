// A small async pool: a few items in flight at once, results delivered as they finish, so memory
// stays bounded by the pool size whatever the number of items.

/** Run `fn` over `items` with at most `concurrency` calls in flight; rejects on the first error. */
export async function forEachPool<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const iterator = (Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]()) as
    | AsyncIterator<T>
    | Iterator<T>;
  let index = 0;
  let failed: unknown;
  let done = false;
  const next = async (): Promise<{ item: T; i: number } | undefined> => {
    if (done || failed !== undefined) return undefined;
    const r = await iterator.next();
    if (r.done) {
      done = true;
      return undefined;
    }
    return { item: r.value, i: index++ };
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const n = await next();
      if (!n) return;
      try {
        await fn(n.item, n.i);
      } catch (error) {
        if (failed === undefined) failed = error;
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, concurrency) }, worker);
  const results = await Promise.allSettled(workers);
  if (failed !== undefined) throw failed;
  const rejected = results.find((r) => r.status === 'rejected');
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
}
