// ONNX ModelProto as plain objects: encode to the protobuf bytes onnxruntime loads, and decode
// back for tests and inspection. Field numbers follow onnx/onnx.proto (IR version 8+).

import { decodeFields, ProtoWriter, readBytesList, readFloats, readInt, readInts, readString, type ProtoField } from './protobuf.ts';

/** TensorProto.DataType values used by the project. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } as const;

/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface OnnxTensor {
  name: string;
  dataType: number;
  dims: number[];
  /** Little-endian element bytes (TensorProto.raw_data). */
  rawData: Uint8Array;
}

export type OnnxAttribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'tensor'; value: OnnxTensor }
  | { name: string; type: 'floats'; value: number[] }
  | { name: string; type: 'ints'; value: number[] }
  | { name: string; type: 'strings'; value: string[] };

export interface OnnxNode {
  opType: string;
  domain?: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attributes: OnnxAttribute[];
}

/** A tensor-typed graph input/output; a string dim is symbolic (e.g. 'N' for the batch). */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  shape: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  initializers: OnnxTensor[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: OnnxGraph;
  /** ModelProto.metadata_props: free key/value strings (feature order, class names, …). */
  metadata?: Record<string, string>;
}

// --- tensors ------------------------------------------------------------------------------

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  return { name, dataType: DataType.FLOAT, dims, rawData: new Uint8Array(Float32Array.from(values).buffer) };
}

export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): OnnxTensor {
  const big = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) big[i] = BigInt(values[i]!);
  return { name, dataType: DataType.INT64, dims, rawData: new Uint8Array(big.buffer) };
}

/** Tensor elements as numbers (float, double, int32, int64, uint8). */
export function tensorValues(t: OnnxTensor): number[] {
  const b = t.rawData;
  const copy = b.slice().buffer;
  switch (t.dataType) {
    case DataType.FLOAT:
      return Array.from(new Float32Array(copy));
    case DataType.DOUBLE:
      return Array.from(new Float64Array(copy));
    case DataType.INT32:
      return Array.from(new Int32Array(copy));
    case DataType.INT64:
      return Array.from(new BigInt64Array(copy), Number);
    case DataType.UINT8:
      return Array.from(b);
    default:
      throw new RangeError(`tensor ${t.name}: data type ${t.dataType} not supported`);
  }
}

// --- encoding -----------------------------------------------------------------------------

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.rawData);
}

function writeAttribute(w: ProtoWriter, a: OnnxAttribute): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      w.int(20, AttrType.FLOAT);
      break;
    case 'int':
      w.int(3, a.value);
      w.int(20, AttrType.INT);
      break;
    case 'string':
      w.string(4, a.value);
      w.int(20, AttrType.STRING);
      break;
    case 'tensor':
      w.message(5, (m) => writeTensor(m, a.value));
      w.int(20, AttrType.TENSOR);
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      w.int(20, AttrType.FLOATS);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      w.int(20, AttrType.INTS);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      w.int(20, AttrType.STRINGS);
      break;
  }
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.message(5, (m) => writeAttribute(m, a));
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  // TypeProto.tensor_type (1) → Tensor { elem_type (1), shape (2) → TensorShapeProto { dim (1) } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: OnnxGraph): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
}

/** Serialise a model to the bytes of a `.onnx` file. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  if (model.producerVersion) w.string(3, model.producerVersion);
  if (model.docString) w.string(6, model.docString);
  w.message(7, (m) => writeGraph(m, model.graph));
  for (const o of model.opsets)
    w.message(8, (m) => {
      if (o.domain) m.string(1, o.domain);
      m.int(2, o.version);
    });
  for (const [key, value] of Object.entries(model.metadata ?? {}))
    w.message(14, (m) => {
      m.string(1, key);
      m.string(2, value);
    });
  return w.finish();
}

// --- decoding -----------------------------------------------------------------------------

function sub(fields: ProtoField[], field: number): ProtoField[][] {
  return readBytesList(fields, field).map(decodeFields);
}

function readTensor(f: ProtoField[]): OnnxTensor {
  const dataType = readInt(f, 2) ?? 0;
  let rawData = readBytesList(f, 9).at(-1);
  if (!rawData) {
    // Typed fields instead of raw_data: float_data (4), int64_data (7).
    if (dataType === DataType.FLOAT) rawData = new Uint8Array(Float32Array.from(readFloats(f, 4)).buffer);
    else if (dataType === DataType.INT64) rawData = new Uint8Array(BigInt64Array.from(readInts(f, 7).map(BigInt)).buffer);
    else rawData = new Uint8Array(0);
  }
  return { name: readString(f, 8) ?? '', dataType, dims: readInts(f, 1), rawData: rawData.slice() };
}

function readAttribute(f: ProtoField[]): OnnxAttribute {
  const name = readString(f, 1) ?? '';
  const type = readInt(f, 20);
  switch (type) {
    case AttrType.FLOAT:
      return { name, type: 'float', value: readFloats(f, 2).at(-1) ?? 0 };
    case AttrType.INT:
      return { name, type: 'int', value: readInt(f, 3) ?? 0 };
    case AttrType.STRING:
      return { name, type: 'string', value: readString(f, 4) ?? '' };
    case AttrType.TENSOR:
      return { name, type: 'tensor', value: readTensor(sub(f, 5)[0] ?? []) };
    case AttrType.FLOATS:
      return { name, type: 'floats', value: readFloats(f, 7) };
    case AttrType.INTS:
      return { name, type: 'ints', value: readInts(f, 8) };
    case AttrType.STRINGS:
      return { name, type: 'strings', value: readBytesList(f, 9).map((b) => new TextDecoder().decode(b)) };
    default:
      throw new RangeError(`attribute ${name}: type ${type} not supported`);
  }
}

function readNode(f: ProtoField[]): OnnxNode {
  const strings = (n: number) => readBytesList(f, n).map((b) => new TextDecoder().decode(b));
  const node: OnnxNode = {
    opType: readString(f, 4) ?? '',
    inputs: strings(1),
    outputs: strings(2),
    attributes: sub(f, 5).map(readAttribute),
  };
  const name = readString(f, 3);
  const domain = readString(f, 7);
  if (name) node.name = name;
  if (domain) node.domain = domain;
  return node;
}

function readValueInfo(f: ProtoField[]): OnnxValueInfo {
  const tensor = sub(sub(f, 2)[0] ?? [], 1)[0] ?? [];
  const dims = sub(sub(tensor, 2)[0] ?? [], 1);
  return {
    name: readString(f, 1) ?? '',
    elemType: readInt(tensor, 1) ?? 0,
    shape: dims.map((d) => readString(d, 2) ?? readInt(d, 1) ?? '?'),
  };
}

/** Parse `.onnx` bytes (what `encodeModel` writes, and models from other producers). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const f = decodeFields(bytes);
  const g = sub(f, 7)[0] ?? [];
  const model: OnnxModel = {
    irVersion: readInt(f, 1) ?? 0,
    producerName: readString(f, 2) ?? '',
    opsets: sub(f, 8).map((o) => ({ domain: readString(o, 1) ?? '', version: readInt(o, 2) ?? 0 })),
    graph: {
      name: readString(g, 2) ?? '',
      nodes: sub(g, 1).map(readNode),
      initializers: sub(g, 5).map(readTensor),
      inputs: sub(g, 11).map(readValueInfo),
      outputs: sub(g, 12).map(readValueInfo),
    },
  };
  const producerVersion = readString(f, 3);
  const docString = readString(f, 6);
  if (producerVersion) model.producerVersion = producerVersion;
  if (docString) model.docString = docString;
  const props = sub(f, 14);
  if (props.length) model.metadata = Object.fromEntries(props.map((p) => [readString(p, 1) ?? '', readString(p, 2) ?? '']));
  return model;
}

/** An attribute of a node by name, or undefined. */
export function attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attributes.find((a) => a.name === name);
}
