// safetensors: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data.
// Written atomically, so a killed run never leaves a half-written file.
// (No maintained npm package implements the format for Node; it is 60 lines.)
import * as fs from 'node:fs';
import { Tensor, type DType, type TypedArray } from '../tensor/tensor';
import { tensor } from '../tensor/create';
import { writeFileAtomic } from '../util/atomic';

const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
const BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1 };

export class SafetensorsError extends Error {
  constructor(file: string, what: string) {
    super(`safetensors ${file}: ${what}`);
    this.name = 'SafetensorsError';
  }
}

export function encodeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of [...tensors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const data = t.data();
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // keeps the data 8-byte aligned (bytes, not UTF-16 units)
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json), ...chunks]);
}

export function decodeSafetensors(buf: Buffer, file = '<buffer>'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new SafetensorsError(file, `too short (${buf.length} bytes)`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) throw new SafetensorsError(file, `header length ${n} runs past the end of the file (${buf.length} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(file, `header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(file, 'header is not a JSON object');
  const metadata = (header.__metadata__ ?? {}) as unknown as Record<string, string>;
  const body = buf.subarray(8 + n);
  const tensors = new Map<string, Tensor>();
  try {
    readTensors(header, body, file, tensors);
  } catch (e) {
    for (const t of tensors.values()) t.dispose(); // those decoded before the bad entry
    throw e;
  }
  return { tensors, metadata };
}

function readTensors(header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>, body: Buffer, file: string, tensors: Map<string, Tensor>): void {
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const isIndex = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!info || typeof info !== 'object' || !Array.isArray(info.shape) || !info.shape.every(isIndex) || !Array.isArray(info.data_offsets) || info.data_offsets.length !== 2)
      throw new SafetensorsError(file, `tensor ${name}: malformed entry ${JSON.stringify(info)}`);
    const dtype = FROM_ST[info.dtype];
    if (!dtype) throw new SafetensorsError(file, `tensor ${name}: unsupported dtype ${info.dtype}`);
    const [begin, end] = info.data_offsets;
    const want = info.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end - begin !== want || end > body.length) throw new SafetensorsError(file, `tensor ${name}: byte range [${begin}, ${end}) does not hold shape [${info.shape}] of ${dtype}`);
    const copy = new Uint8Array(want);
    copy.set(body.subarray(begin, end));
    const view: TypedArray =
      dtype === 'float32' ? new Float32Array(copy.buffer) : dtype === 'float64' ? new Float64Array(copy.buffer) : dtype === 'int64' ? new BigInt64Array(copy.buffer) : dtype === 'int32' ? new Int32Array(copy.buffer) : copy;
    tensors.set(name, tensor(view, info.shape, dtype));
  }
}

export function saveSafetensors(file: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export function loadSafetensors(file: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw new SafetensorsError(file, 'file not found');
  return decodeSafetensors(fs.readFileSync(file), file);
}
