// Export of a gbdt model to one ONNX `ai.onnx.ml` TreeEnsembleClassifier node. Input `input`
// float32 [N, F] (features in model.featureNames order), outputs `label` int64 [N] (the caller's
// class ids) and `probabilities` float32 [N, C] as a plain tensor (no ZipMap).

import { DataType, encodeModel, type OnnxAttribute, type OnnxModel } from '../../onnx/model.ts';
import { groupCount, type GbdtModel } from './model.ts';

export const GBDT_ONNX_INPUT = 'input';
export const GBDT_ONNX_LABEL = 'label';
export const GBDT_ONNX_PROBABILITIES = 'probabilities';

/** The ONNX model as plain objects (see `gbdtToOnnx` for the bytes). */
export function gbdtToOnnxModel(model: GbdtModel): OnnxModel {
  const binary = model.objective === 'binary:logistic';
  const K = groupCount(model);
  const nodes = {
    treeIds: [] as number[],
    nodeIds: [] as number[],
    featureIds: [] as number[],
    values: [] as number[],
    modes: [] as string[],
    trueIds: [] as number[],
    falseIds: [] as number[],
    missingTrue: [] as number[],
  };
  const cls = { treeIds: [] as number[], nodeIds: [] as number[], ids: [] as number[], weights: [] as number[] };
  const addLeaf = (tree: number, node: number, group: number, weight: number) => {
    cls.treeIds.push(tree);
    cls.nodeIds.push(node);
    // Binary: every vote goes to class 0 and the runtime derives both columns from it.
    cls.ids.push(binary ? 0 : group);
    cls.weights.push(weight);
  };

  model.trees.forEach((t, tree) => {
    if (t.group < 0 || t.group >= K) throw new RangeError(`tree ${tree}: group ${t.group} out of range`);
    for (let i = 0; i < t.left.length; i++) {
      const leaf = t.left[i]! < 0;
      nodes.treeIds.push(tree);
      nodes.nodeIds.push(i);
      nodes.featureIds.push(leaf ? 0 : t.feature[i]!);
      nodes.values.push(leaf ? 0 : t.threshold[i]!);
      nodes.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      nodes.trueIds.push(leaf ? 0 : t.left[i]!);
      nodes.falseIds.push(leaf ? 0 : t.right[i]!);
      nodes.missingTrue.push(!leaf && t.defaultLeft[i] ? 1 : 0);
      if (leaf) addLeaf(tree, i, t.group, t.value[i]!);
    }
  });

  // onnxruntime's binary case: when every leaf weight is ≥ 0 it returns [1 − s, s] without applying
  // the logistic function. One extra single-leaf tree with a negligible negative vote keeps the
  // documented [σ(−s), σ(s)] path. Gradient boosting almost always has mixed signs already.
  if (binary && cls.weights.every((w) => w >= 0)) {
    const tree = model.trees.length;
    nodes.treeIds.push(tree);
    nodes.nodeIds.push(0);
    nodes.featureIds.push(0);
    nodes.values.push(0);
    nodes.modes.push('LEAF');
    nodes.trueIds.push(0);
    nodes.falseIds.push(0);
    nodes.missingTrue.push(0);
    addLeaf(tree, 0, 0, -1e-30);
  }

  const attributes: OnnxAttribute[] = [
    { name: 'nodes_treeids', type: 'ints', value: nodes.treeIds },
    { name: 'nodes_nodeids', type: 'ints', value: nodes.nodeIds },
    { name: 'nodes_featureids', type: 'ints', value: nodes.featureIds },
    { name: 'nodes_values', type: 'floats', value: nodes.values },
    { name: 'nodes_modes', type: 'strings', value: nodes.modes },
    { name: 'nodes_truenodeids', type: 'ints', value: nodes.trueIds },
    { name: 'nodes_falsenodeids', type: 'ints', value: nodes.falseIds },
    { name: 'nodes_missing_value_tracks_true', type: 'ints', value: nodes.missingTrue },
    { name: 'class_treeids', type: 'ints', value: cls.treeIds },
    { name: 'class_nodeids', type: 'ints', value: cls.nodeIds },
    { name: 'class_ids', type: 'ints', value: cls.ids },
    { name: 'class_weights', type: 'floats', value: cls.weights },
    { name: 'classlabels_int64s', type: 'ints', value: model.classLabels },
    { name: 'post_transform', type: 'string', value: binary ? 'LOGISTIC' : 'SOFTMAX' },
    { name: 'base_values', type: 'floats', value: model.baseMargin },
  ];
  const C = model.classLabels.length;
  const F = model.featureNames.length;
  return {
    irVersion: 8,
    opsets: [
      { domain: '', version: 17 },
      { domain: 'ai.onnx.ml', version: 3 },
    ],
    producerName: 'skintwin-gbdt',
    producerVersion: String(model.version),
    docString: `Gradient-boosted trees (${model.objective}), ${model.rounds} rounds, ${model.trees.length} trees`,
    graph: {
      name: 'gbdt',
      nodes: [
        {
          opType: 'TreeEnsembleClassifier',
          domain: 'ai.onnx.ml',
          name: 'trees',
          inputs: [GBDT_ONNX_INPUT],
          outputs: [GBDT_ONNX_LABEL, GBDT_ONNX_PROBABILITIES],
          attributes,
        },
      ],
      inputs: [{ name: GBDT_ONNX_INPUT, elemType: DataType.FLOAT, shape: ['N', F] }],
      outputs: [
        { name: GBDT_ONNX_LABEL, elemType: DataType.INT64, shape: ['N'] },
        { name: GBDT_ONNX_PROBABILITIES, elemType: DataType.FLOAT, shape: ['N', C] },
      ],
      initializers: [],
    },
    metadata: {
      feature_names: JSON.stringify(model.featureNames),
      class_labels: JSON.stringify(model.classLabels),
      objective: model.objective,
    },
  };
}

/** The `.onnx` file bytes of a gbdt model. */
export function gbdtToOnnx(model: GbdtModel): Uint8Array {
  return encodeModel(gbdtToOnnxModel(model));
}
