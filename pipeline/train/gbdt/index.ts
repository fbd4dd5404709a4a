// The gbdt trainer (the XGBoost role): histogram gradient-boosted trees in TypeScript with ONNX export.

export { trainGbdt, type GbdtData, type GbdtIo } from './train.ts';
export { gbdtToOnnx, gbdtToOnnxModel, GBDT_ONNX_INPUT, GBDT_ONNX_LABEL, GBDT_ONNX_PROBABILITIES } from './onnx.ts';
export {
  predictProba,
  predictLabels,
  predictMargins,
  logLoss,
  featureImportance,
  parseGbdtModel,
  GBDT_FORMAT,
  GBDT_FORMAT_VERSION,
  type GbdtModel,
  type GbdtTree,
  type FeatureImportance,
} from './model.ts';
export { gbdtParamSpecs, parseGbdtParams, type GbdtParams } from './params.ts';
export { saveGbdt, type SavedGbdt } from './save.ts';
