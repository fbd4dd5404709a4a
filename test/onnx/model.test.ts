import { describe, expect, it } from 'vitest';
import {
  attribute,
  DataType,
  decodeModel,
  encodeModel,
  floatTensor,
  int64Tensor,
  tensorValues,
  type OnnxModel,
} from '../../pipeline/onnx/model.ts';
import { decodeFields, ProtoWriter, readFloats, readInts } from '../../pipeline/onnx/protobuf.ts';

describe('protobuf wire format', () => {
  it('encodes varints like protobuf (small, multi-byte, negative int64 as ten bytes)', () => {
    const w = new ProtoWriter();
    w.int(1, 1);
    w.int(2, 300);
    w.int(3, -1);
    const bytes = w.finish();
    expect(Array.from(bytes.subarray(0, 5))).toEqual([0x08, 0x01, 0x10, 0xac, 0x02]);
    expect(bytes.length).toBe(5 + 1 + 10);
    const fields = decodeFields(bytes);
    expect(readInts(fields, 2)).toEqual([300]);
    expect(readInts(fields, 3)).toEqual([-1]);
  });

  it('reads repeated scalars packed and unpacked alike', () => {
    const w = new ProtoWriter();
    w.packedInts(8, [1, -2, 2 ** 40]);
    w.int(8, 7);
    w.packedFloats(7, [0.5, -1.25]);
    w.float(7, 3);
    const fields = decodeFields(w.finish());
    expect(readInts(fields, 8)).toEqual([1, -2, 2 ** 40, 7]);
    expect(readFloats(fields, 7)).toEqual([0.5, -1.25, 3]);
  });

  it('rejects truncated input', () => {
    const w = new ProtoWriter();
    w.string(1, 'hello');
    const bytes = w.finish();
    expect(() => decodeFields(bytes.subarray(0, 4))).toThrow(/past the end/);
  });
});

describe('ONNX model encoding', () => {
  const model: OnnxModel = {
    irVersion: 8,
    opsets: [{ domain: '', version: 17 }],
    producerName: 'test',
    graph: {
      name: 'g',
      nodes: [
        { opType: 'Add', inputs: ['x', 'bias'], outputs: ['sum'], attributes: [] },
        {
          opType: 'ArgMax',
          inputs: ['sum'],
          outputs: ['idx'],
          attributes: [
            { name: 'axis', type: 'int', value: 1 },
            { name: 'keepdims', type: 'int', value: 0 },
          ],
        },
      ],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', 3] }],
      outputs: [
        { name: 'sum', elemType: DataType.FLOAT, shape: ['N', 3] },
        { name: 'idx', elemType: DataType.INT64, shape: ['N'] },
      ],
      initializers: [floatTensor('bias', [3], [0.5, -1, 2])],
    },
    metadata: { feature_names: '["a","b","c"]' },
  };

  it('round-trips through decodeModel', () => {
    const back = decodeModel(encodeModel(model));
    expect(back.graph.inputs).toEqual(model.graph.inputs);
    expect(back.graph.outputs).toEqual(model.graph.outputs);
    expect(back.graph.nodes[1]!.attributes).toEqual(model.graph.nodes[1]!.attributes);
    expect(tensorValues(back.graph.initializers[0]!)).toEqual([0.5, -1, 2]);
    expect(back.metadata).toEqual(model.metadata);
    expect(back.opsets).toEqual(model.opsets);
    expect(attribute(back.graph.nodes[1]!, 'axis')).toEqual({ name: 'axis', type: 'int', value: 1 });
    expect(tensorValues(int64Tensor('i', [2], [-3, 2 ** 40]))).toEqual([-3, 2 ** 40]);
  });

  it('loads and runs in onnxruntime with a symbolic batch dimension', async () => {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(encodeModel(model));
    expect(session.inputNames).toEqual(['x']);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, -9]), [2, 3]) });
    expect(Array.from(out.sum!.data as Float32Array)).toEqual([1.5, 1, 5, 4.5, 4, -7]);
    expect(Array.from(out.idx!.data as BigInt64Array, Number)).toEqual([2, 0]);
  });
});
