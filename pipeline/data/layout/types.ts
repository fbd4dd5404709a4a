// The shape of a raw dataset as fetch-dataset found it: what prepare-data and build-fusion-data
// read back from the dataset manifest instead of guessing again.

export type LayoutKind = 'synthetic' | 'yolo' | 'class-folders' | 'csv';

export interface YoloSplit {
  /** Split folder name as in the export: `train`, `valid`, `val` or `test`. */
  name: string;
  /** Images folder, relative to the dataset dir. */
  images: string;
  /** Labels folder, relative to the dataset dir (null when the split has none). */
  labels: string | null;
  imageCount: number;
  labelCount: number;
}

export interface YoloLayout {
  /** data.yaml path relative to the dataset dir, null when the export has none. */
  dataYaml: string | null;
  /** Class names by id (from data.yaml `names`, a list or an id → name mapping). */
  names: string[];
  nc: number;
  splits: YoloSplit[];
}

export interface ClassFolderSplit {
  /** Split folder (`train`, …), null when the class folders sit directly under the root. */
  name: string | null;
  /** Folder holding the class folders, relative to the dataset dir ('' for the root). */
  dir: string;
  /** Images per class. */
  counts: Record<string, number>;
}

export interface ClassFoldersLayout {
  classes: string[];
  splits: ClassFolderSplit[];
}

export interface CsvTable {
  /** Relative to the dataset dir. */
  path: string;
  columns: string[];
  /** Data rows (header excluded). */
  rows: number;
}

export interface MetadataFile {
  path: string;
  records: number;
}

export interface DatasetLayout {
  /** The primary layout; `synthetic` = YOLO export + metadata.jsonl + fusion.csv. */
  kind: LayoutKind;
  /**
   * Where the layout starts, relative to the dataset dir: '' normally, or the single top folder
   * an archive wrapped everything in (Kaggle zips often do).
   */
  root: string;
  /** Every component found, e.g. `['yolo', 'metadata', 'csv']` for the synthetic dataset. */
  components: ('yolo' | 'class-folders' | 'csv' | 'metadata')[];
  yolo?: YoloLayout;
  classFolders?: ClassFoldersLayout;
  tables?: CsvTable[];
  metadata?: MetadataFile;
}

export type SourceType = 'synthetic' | 'kaggle' | 'url' | 'path';

export interface SourceDescription {
  type: SourceType;
  /** One line a person reads: `Kaggle dataset safabenammor/datasetam version 3`. */
  description: string;
  /** Kaggle `owner/slug`. */
  dataset?: string;
  /** Kaggle dataset version (absent when not pinned: latest at fetch time). */
  version?: number;
  /** Public URL (Kaggle dataset page, or the `url` param). Never a signed storage URL. */
  url?: string;
  /** The `path` param, as written in pipeline.yaml. */
  path?: string;
  /** Generator params of the synthetic source. */
  params?: Record<string, unknown>;
}

export interface FileRecord {
  path: string;
  size: number;
  sha256: string;
}

/** Counts of labels: split → class → count (YOLO: boxes; class folders / metadata: images). */
export type SplitCounts = Record<string, Record<string, number>>;

export interface LabelCounts {
  /** YOLO boxes per class, per export split. */
  detection?: SplitCounts;
  /** Images per folder class, per split (`all` when there are no split folders). */
  classification?: SplitCounts;
  /** Skin type per split from metadata.jsonl (synthetic dataset). */
  skinType?: SplitCounts;
  /** Table path → label column → value → rows (columns `target`, `label`, `class`, `skin_type`). */
  tables?: Record<string, Record<string, Record<string, number>>>;
}

export interface DatasetManifest {
  schema: 1;
  name: string;
  source: SourceDescription;
  /** sha256 of the downloaded or given archive; null for directories and generated data. */
  archiveSha256: string | null;
  layout: DatasetLayout;
  counts: {
    files: number;
    /** Extension (lower case, with dot; '' for none) → files. */
    byExtension: Record<string, number>;
    images: number;
  };
  labelCounts: LabelCounts;
  totalBytes: number;
  /** sha256 of files.jsonl: one hash for the whole file list with sizes and hashes. */
  filesSha256: string;
}
