// Streaming CSV: one row at a time with its 1-based line number, so memory stays constant for
// tables of millions of rows and every problem can point at its line.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface CsvRow {
  line: number;
  cells: string[];
}

/** Split one CSV line (RFC 4180 quoting, no embedded newlines). */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells;
}

/** Quote a cell only when it needs it. */
export function csvCell(value: string | number): string {
  const s = String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows of a CSV file, header included (line 1); blank lines are skipped. */
export async function* readCsv(path: string, signal?: AbortSignal): AsyncGenerator<CsvRow> {
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const trimmed = line === 1 ? text.replace(/^\uFEFF/, '') : text;
      if (trimmed.trim() === '') continue;
      yield { line, cells: splitCsvLine(trimmed) };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/**
 * A buffered line writer with backpressure: bounded memory however many rows go through.
 * Writes to `path` directly; callers write into a stage's staging dir, which the engine swaps in atomically.
 */
export class LineWriter {
  private chunks: string[] = [];
  private size = 0;
  private failed: Error | undefined;
  private constructor(private readonly stream: import('node:fs').WriteStream) {
    // Remember a write error (disk full…) so the next write or close rejects instead of hanging.
    stream.on('error', (error) => (this.failed ??= error));
  }

  static async open(path: string): Promise<LineWriter> {
    const { createWriteStream } = await import('node:fs');
    const { mkdir } = await import('node:fs/promises');
    const { dirname } = await import('node:path');
    await mkdir(dirname(path), { recursive: true });
    return new LineWriter(createWriteStream(path, { encoding: 'utf8' }));
  }

  async write(line: string): Promise<void> {
    this.chunks.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.chunks.length) return;
    const text = this.chunks.join('');
    this.chunks = [];
    this.size = 0;
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => reject(error);
        this.stream.once('error', onError);
        this.stream.once('drain', () => {
          this.stream.off('error', onError);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}
