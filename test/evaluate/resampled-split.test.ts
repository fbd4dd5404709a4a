// resampledSplit: the chain evaluation's view of a letterboxed detection split as classifier
// input — each row's content cut out of the pad and resampled exactly as the project resamples.

import { describe, expect, it } from 'vitest';
import { resampledSplit } from '../../pipeline/evaluate/stage.ts';
import { letterboxGeometry } from '../../pipeline/data/images/letterbox.ts';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeToCHW, preprocessDecoded } from '../../pipeline/data/images/preprocess.ts';
import { resizeRgb } from '../../pipeline/data/images/resample.ts';
import { ImageTensorWriter, openImageTensorFile, type ImageIndexItem } from '../../pipeline/data/images/tensor-file.ts';
import type { OpenedModel } from '../../pipeline/inference/engine.ts';
import type { ModelCard } from '../../pipeline/train/card.ts';
import { picture } from '../support/pictures.ts';
import { scratchDir } from '../support/scratch-dir.ts';

const scratch = scratchDir('resampled-split');

function classifier(resize: 'fill' | 'letterbox', size: number): OpenedModel {
  const card = { task: 'image-classification', preprocessing: { type: 'image', size, resize, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }, classes: ['Dry', 'Normal', 'Oily'] };
  return { card: card as unknown as ModelCard, display: 'classifier' } as OpenedModel;
}

describe('resampledSplit', () => {
  it('cuts each letterboxed row back to its picture and resamples it to the classifier\'s input', async () => {
    // Two pictures letterboxed at scale 1 into 64×64: 64×40 (pad top and bottom) and 30×64 (left and right).
    const pictures = [picture(64, 40, 1), picture(30, 64, 2)];
    const sizes = [[64, 40], [30, 64]] as const;
    const writer = await ImageTensorWriter.create(`${scratch.path}/test`, {
      split: 'test', count: 2, shape: [2, 64, 64, 3], mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox', padValue: 114, task: 'detection', classNames: [],
    });
    const items: ImageIndexItem[] = [];
    for (const [row, [w, h]] of sizes.entries()) {
      const boxed = preprocessDecoded({ pixels: pictures[row]!, width: w, height: h, fullWidth: w, fullHeight: h }, { size: 64, resize: 'letterbox' });
      const g = letterboxGeometry(w, h, 64);
      expect(g.scale).toEqual([1, 1]);
      await writer.writeRow(row, boxed.pixels);
      items.push({ id: `p${row}`, row, file: `p${row}.jpg`, width: w, height: h, scale: g.scale, pad: [g.pad[0], g.pad[1]], sha256: 'x' });
    }
    await writer.close(items);
    const file = await openImageTensorFile(scratch.path, 'test');
    try {
      const fill = resampledSplit(file, classifier('fill', 24));
      for (const [row, [w, h]] of sizes.entries()) {
        expect(Buffer.compare(await fill.readRow(row), Buffer.from(resizeRgb(pictures[row]!, w, h, 24, 24))), `row ${row}`).toBe(0);
      }
      const boxed = resampledSplit(file, classifier('letterbox', 32));
      const want = preprocessDecoded({ pixels: pictures[1]!, width: 30, height: 64, fullWidth: 30, fullHeight: 64 }, { size: 32, resize: 'letterbox' }).pixels;
      expect(Buffer.compare(await boxed.readRow(1), want)).toBe(0);
      const batches = [];
      for await (const b of fill.batches(2)) batches.push(b);
      const [batch] = batches;
      const tensor = new Float32Array(2 * 3 * 24 * 24);
      for (const row of [0, 1]) normalizeToCHW(await fill.readRow(row), 24, 24, IMAGENET_MEAN, IMAGENET_STD, tensor, row * 3 * 24 * 24);
      expect(batch!.data).toEqual(tensor);
    } finally {
      await file.close();
    }
  });
});
