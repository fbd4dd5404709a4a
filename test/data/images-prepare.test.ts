// prepare-data's preprocessing pass (several images per call, resized together): every row holds
// exactly what preprocessImage makes of its file, whatever the mix of sizes, formats and rotations.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preprocessImage } from '../../pipeline/data/images/preprocess.ts';
import { openImageTensorFile } from '../../pipeline/data/images/tensor-file.ts';
import { prepareImages } from '../../pipeline/data/prepare/images.ts';
import { RecordingLogger } from '../support/logger.ts';
import { picture } from '../support/pictures.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'images-prepare-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const rgb = (w: number, h: number, seed: number) => sharp(picture(w, h, seed), { raw: { width: w, height: h, channels: 3 } });

describe('prepare-data preprocessing pass', () => {
  it('writes, row by row, exactly what preprocessImage makes of each file', async () => {
    const data = join(root, 'data');
    await mkdir(join(data, 'train', 'images'), { recursive: true });
    await mkdir(join(data, 'train', 'labels'), { recursive: true });
    const meta: string[] = [];
    const put = async (id: string, bytes: Buffer, ext = 'jpg') => {
      const file = `train/images/${id}.${ext}`;
      await writeFile(join(data, file), bytes);
      meta.push(JSON.stringify({ id, file, skin_type: ['Dry', 'Normal', 'Oily'][meta.length % 3] }));
    };
    // Enough same-size JPEGs for several stacked calls, plus the cases that leave the stack.
    for (let i = 0; i < 21; i++) await put(`img${String(i).padStart(2, '0')}`, await rgb(160, 120, i + 1).jpeg({ quality: 85 }).toBuffer());
    await put('odd', await rgb(131, 97, 50).jpeg().toBuffer());
    await put('rotated', await rgb(160, 120, 51).jpeg().withMetadata({ orientation: 8 }).toBuffer());
    await put('png', await rgb(160, 120, 52).png().toBuffer(), 'png');
    await put('small', await rgb(48, 40, 53).jpeg().toBuffer());
    await writeFile(join(data, 'metadata.jsonl'), meta.join('\n') + '\n');

    const out = join(root, 'out');
    const size = 56;
    const r = await prepareImages({
      task: 'classification',
      root: data,
      display: 'data',
      outDir: out,
      imageSize: size,
      fractions: { train: 0.6, val: 0.2 },
      seed: 3,
      maxBadFraction: 0.5,
      nearDuplicateDistance: -1,
      labelSource: 'metadata',
      minSize: 8,
      strictColour: false,
      imbalanceRatio: 100,
      concurrency: 3,
      logger: new RecordingLogger(),
    });
    expect(r.quarantined).toBe(0);
    let rows = 0;
    for (const split of ['train', 'val', 'test'] as const) {
      const file = await openImageTensorFile(out, split);
      try {
        for (const item of file.items) {
          const want = await preprocessImage(join(data, item.file), { size, resize: 'fill' });
          const got = await file.readRow(item.row);
          expect(got.equals(want.pixels), `${split} ${item.id}`).toBe(true);
          expect([item.width, item.height]).toEqual([want.width, want.height]);
          rows++;
        }
      } finally {
        await file.close();
      }
    }
    expect(rows).toBe(25);
  });
});
