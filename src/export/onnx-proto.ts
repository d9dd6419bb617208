// The ONNX file format: the subset of onnx.proto (Apache-2.0, the ONNX
// project; field numbers as in its onnx/onnx.proto) that a model made of
// dense tensors needs, encoded and decoded with protobufjs.
import * as protobuf from 'protobufjs';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; }
  optional string name = 1;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  };
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

let root: protobuf.Root | undefined;
function schema(): protobuf.Root {
  return (root ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root);
}

/** ONNX TensorProto.DataType codes of the dtypes we export. */
export const ONNX_DTYPE = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 } as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

export interface OnnxTensor {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  /** Little-endian raw bytes of the values. */
  raw: Uint8Array;
}

/** A subgraph attribute (If's branches): a graph without inputs that may read any value of the graphs around it. */
export interface OnnxSubgraph {
  graph: OnnxGraph;
}

export type AttrValue = number | string | number[] | { int: number } | { ints: number[] } | { float: number } | { floats: number[] } | OnnxTensor | OnnxSubgraph;

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
}

export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDType;
  /** Numbers are fixed sizes, strings symbolic ones ('N'). */
  shape: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModelOptions {
  opset: number;
  producerVersion?: string;
  metadata?: Record<string, string>;
}

/** IR version 8 goes with opsets 14 to 18. */
export const IR_VERSION = 8;

const A = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7 };

function tensorMessage(t: OnnxTensor): Record<string, unknown> {
  return { name: t.name, dims: t.dims, data_type: ONNX_DTYPE[t.dtype], raw_data: t.raw };
}

function attributeMessage(name: string, v: AttrValue): Record<string, unknown> {
  // Plain numbers: integers are INT attributes, others FLOAT; arrays the same per element type.
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { name, type: A.INTS, ints: v } : { name, type: A.FLOATS, floats: v };
  if ('int' in v) return { name, type: A.INT, i: v.int };
  if ('ints' in v) return { name, type: A.INTS, ints: v.ints };
  if ('float' in v) return { name, type: A.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
  if ('graph' in v) return { name, type: A.GRAPH, g: graphMessage(v.graph) };
  return { name, type: A.TENSOR, t: tensorMessage(v) };
}

function valueInfoMessage(v: OnnxValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: { tensor_type: { elem_type: ONNX_DTYPE[v.dtype], shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

function graphMessage(g: OnnxGraph): Record<string, unknown> {
  return {
    name: g.name,
    doc_string: g.docString,
    node: g.nodes.map((n, i) => ({
      // Node names are unique model-wide, subgraphs included: the graph's name keeps them apart.
      name: n.name ?? `${g.name}/${n.op}_${i}`,
      op_type: n.op,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attributeMessage(k, v)),
    })),
    initializer: g.initializers.map(tensorMessage),
    input: g.inputs.map(valueInfoMessage),
    output: g.outputs.map(valueInfoMessage),
  };
}

/** Serialises one graph as an ONNX model file. */
export function encodeModel(g: OnnxGraph, o: OnnxModelOptions): Uint8Array {
  const Model = schema().lookupType('onnx.ModelProto');
  const message = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: o.opset }],
    producer_name: 'ztw',
    producer_version: o.producerVersion ?? '0',
    graph: graphMessage(g),
    metadata_props: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const err = Model.verify(message);
  if (err) throw new Error(`ONNX encoding: ${err}`);
  return Model.encode(Model.fromObject(message)).finish();
}

export interface DecodedGraph {
  name: string;
  /** Attribute values as numbers, strings or arrays; subgraphs (If branches) as DecodedGraph. */
  nodes: { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, unknown> }[];
  initializers: { name: string; dims: number[]; dtype: number; bytes: number }[];
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
}

export interface DecodedModel {
  irVersion: number;
  opset: number;
  graph: DecodedGraph;
  metadata: Record<string, string>;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function decodeGraph(g: any): DecodedGraph {
  const shapeOf = (v: any): (number | string)[] => (v.type?.tensor_type?.shape?.dim ?? []).map((d: any) => d.dim_param ?? d.dim_value);
  const attr = (a: any): unknown => (a.g ? decodeGraph(a.g) : a.ints ?? a.floats ?? a.i ?? a.f ?? (a.s ? new TextDecoder().decode(Uint8Array.from(a.s)) : a.t));
  return {
    name: g.name,
    nodes: (g.node ?? []).map((n: any) => ({ op: n.op_type, inputs: n.input ?? [], outputs: n.output ?? [], attrs: Object.fromEntries((n.attribute ?? []).map((a: any) => [a.name, attr(a)])) })),
    initializers: (g.initializer ?? []).map((t: any) => ({ name: t.name, dims: t.dims ?? [], dtype: t.data_type, bytes: (t.raw_data ?? []).length })),
    inputs: (g.input ?? []).map((v: any) => ({ name: v.name, shape: shapeOf(v) })),
    outputs: (g.output ?? []).map((v: any) => ({ name: v.name, shape: shapeOf(v) })),
  };
}

/** Reads an ONNX file back (structure only: initializer sizes, not values). */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  const Model = schema().lookupType('onnx.ModelProto');
  const m = Model.toObject(Model.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, any>;
  return {
    irVersion: m.ir_version,
    opset: (m.opset_import ?? [])[0]?.version,
    graph: decodeGraph(m.graph ?? {}),
    metadata: Object.fromEntries((m.metadata_props ?? []).map((p: { key: string; value: string }) => [p.key, p.value])),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */
