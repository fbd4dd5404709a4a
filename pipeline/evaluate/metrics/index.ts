// Evaluation metrics: classification and detection figures, per-slice breakdowns, champion /
// challenger comparison and the predictions-file reader behind `skintwin metrics`.

export { argmaxRow, classificationMetrics, classificationMetricsWithAuc, confidenceBin, ECE_BINS, groupedAuc, LOG_LOSS_EPS, metricsOfRows, prepareClassification, preparedHeadline, rocAucOneVsRest, rowTerms, scoreOrder } from './classification.ts';
export { DEFAULT_CONFIDENCE, interpolatedPrecision, iou, IOU_THRESHOLDS, preparedDetectionHeadline, prepareDetections, scoreDetections, scorePrepared } from './detection.ts';
export type { ClassificationHeadline, PreparedClassification, RowTerms, ScoreOrder } from './classification.ts';
export type { Box, DetectionHeadline, DetectionSample, PreparedDetections } from './detection.ts';
export { classificationReport, classificationSlices, classificationSlicesFromColumns, detectionSlices, sliceColumns, sliceReport } from './slices.ts';
export type { ExpectedSlices, SliceColumn } from './slices.ts';
export { compareClassification, compareDetection, DEFAULT_RESAMPLES, DEFAULT_SEED, mcnemar, pairedBootstrap, pairedBootstrapMany, quantile, seededRandom } from './compare.ts';
export { metricsFromFile, PROBABILITY_SUM_TOLERANCE, readClassificationPredictions, readDetectionPredictions } from './predictions.ts';
export type { ClassificationPredictions } from './predictions.ts';
