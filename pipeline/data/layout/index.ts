// Dataset layouts and manifests: what fetch-dataset writes and prepare-data reads back.

export type * from './types.ts';
export { detectLayout, describeCsv, splitCsvLine, EXPORT_SPLITS } from './detect.ts';
export {
  writeDatasetManifest,
  readDatasetManifest,
  verifyDatasetManifest,
  MANIFEST_FILE,
  FILES_FILE,
  type WriteManifestOptions,
  type VerifyResult,
  type ManifestMismatch,
} from './manifest.ts';
export { listFiles, isImage, IMAGE_EXTENSIONS, MANIFEST_FILES, type ListedFile } from './walk.ts';
