// Params of the gbdt trainer, with XGBoost's names, meanings and defaults; shared by the `train`
// stage, the CLI (`skintwin train gbdt --n-estimators 200`) and the action inputs.

import { ConfigurationError } from '../../core/errors.ts';
import { parseParams, type ParamsOf } from '../../core/params.ts';

export const gbdtParamSpecs = {
  'n-estimators': { type: 'integer', description: 'Boosting rounds (trees per class for multi-class)', default: 100, min: 1, max: 100_000 },
  'max-depth': { type: 'integer', description: 'Maximum tree depth (root = depth 0)', default: 6, min: 1, max: 16 },
  'learning-rate': { type: 'number', description: 'Shrinkage applied to every leaf (eta)', default: 0.1, min: 0, max: 1 },
  subsample: { type: 'number', description: 'Fraction of training rows sampled each round', default: 0.8, min: 0, max: 1 },
  'colsample-bytree': { type: 'number', description: 'Fraction of features sampled for each tree', default: 0.8, min: 0, max: 1 },
  'min-child-weight': { type: 'number', description: 'Minimum hessian sum in a child for a split', default: 1, min: 0 },
  'reg-lambda': { type: 'number', description: 'L2 regularisation of leaf weights', default: 1, min: 0 },
  'reg-alpha': { type: 'number', description: 'L1 regularisation of leaf weights', default: 0, min: 0 },
  'max-bin': { type: 'integer', description: 'Maximum histogram bins per feature (one more is kept for missing values)', default: 256, min: 2, max: 256 },
  seed: { type: 'integer', description: 'Random seed for row and column sampling', default: 42, min: 0, max: 2 ** 32 - 1 },
  'early-stopping-rounds': { type: 'integer', description: 'Stop when the validation log loss has not improved for this many rounds (off when unset)', min: 1 },
  threads: { type: 'integer', description: 'Worker threads (default: 2, at most the number of trees per round)', default: 2, min: 1, max: 64 },
} as const;

export type GbdtParams = ParamsOf<typeof gbdtParamSpecs>;

/** Parse raw params (YAML values or CLI strings) into typed, validated ones. */
export function parseGbdtParams(raw: Readonly<Record<string, unknown>> = {}, what = 'gbdt'): GbdtParams {
  const params = parseParams(gbdtParamSpecs, raw, { what });
  if (params.subsample <= 0) throw new ConfigurationError(`${what}: param \`subsample\` must be > 0, got ${params.subsample}`, { field: 'subsample' });
  if (params['colsample-bytree'] <= 0)
    throw new ConfigurationError(`${what}: param \`colsample-bytree\` must be > 0, got ${params['colsample-bytree']}`, { field: 'colsample-bytree' });
  return params;
}
