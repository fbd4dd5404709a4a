// ONNX model building blocks shared by the trainers: protobuf encoding/decoding of ModelProto.

export * from './model.ts';
export { ProtoWriter, decodeFields } from './protobuf.ts';
