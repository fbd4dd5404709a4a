// Protobuf wire format, by hand: just what ONNX models need (varints, length-delimited fields,
// packed repeated scalars, fixed32 floats), for writing models and reading them back in tests.

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Appends encoded fields to a growable buffer. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Raw varint; negative int64 values take ten bytes (two's complement), as protobuf requires. */
  varint(value: number | bigint): void {
    this.ensure(10);
    if (typeof value === 'number' && value >= 0 && value < 2 ** 31) {
      let v = value;
      while (v >= 0x80) {
        this.buf[this.len++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.len++] = v;
      return;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`not an integer: ${value}`);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): void {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.ensure(4);
    this.view.setFloat32(this.len, value, true);
    this.len += 4;
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.ensure(value.length);
    this.buf.set(value, this.len);
    this.len += value.length;
  }

  string(field: number, value: string): void {
    this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    build(inner);
    this.bytes(field, inner.finish());
  }

  /** Packed repeated int64/int32 (varints in one length-delimited field). Empty lists are omitted. */
  packedInts(field: number, values: ArrayLike<number | bigint>): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.varint(values[i]!);
    this.bytes(field, inner.finish());
  }

  /** Packed repeated float (little-endian float32s in one length-delimited field). */
  packedFloats(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    const data = new Uint8Array(values.length * 4);
    const dv = new DataView(data.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
    this.bytes(field, data);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** One decoded field: varints as bigint (int64 safe), fixed32/64 as raw bytes, length-delimited as bytes. */
export type ProtoField =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1 | 5; bytes: Uint8Array }
  | { field: number; wire: 2; bytes: Uint8Array };

function readVarint(buf: Uint8Array, pos: { p: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.p >= buf.length) throw new RangeError('truncated varint');
    const b = buf[pos.p++]!;
    result |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return result;
    shift += 7n;
    if (shift > 63n) throw new RangeError('varint too long');
  }
}

/** Split a message into its fields, in order. */
export function decodeFields(buf: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  const pos = { p: 0 };
  while (pos.p < buf.length) {
    const key = Number(readVarint(buf, pos));
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === WIRE_VARINT) out.push({ field, wire, value: readVarint(buf, pos) });
    else if (wire === WIRE_LEN) {
      const n = Number(readVarint(buf, pos));
      if (pos.p + n > buf.length) throw new RangeError(`field ${field}: length ${n} past the end`);
      out.push({ field, wire, bytes: buf.subarray(pos.p, pos.p + n) });
      pos.p += n;
    } else if (wire === WIRE_FIXED32 || wire === WIRE_FIXED64) {
      const n = wire === WIRE_FIXED32 ? 4 : 8;
      out.push({ field, wire, bytes: buf.subarray(pos.p, pos.p + n) });
      pos.p += n;
    } else throw new RangeError(`unsupported wire type ${wire} (field ${field})`);
  }
  return out;
}

/** int64 as a signed number (exact within ±2^53). */
export function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** Repeated int64: accepts both packed and unpacked encodings, as proto2 parsers must. */
export function readInts(fields: ProtoField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(toInt(f.value));
    else if (f.wire === 2) {
      const pos = { p: 0 };
      while (pos.p < f.bytes.length) out.push(toInt(readVarint(f.bytes, pos)));
    }
  }
  return out;
}

/** Repeated float: packed or one fixed32 per entry. */
export function readFloats(fields: ProtoField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 5 || f.wire === 2) {
      const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
      for (let i = 0; i + 4 <= f.bytes.length; i += 4) out.push(dv.getFloat32(i, true));
    }
  }
  return out;
}

export function readBytesList(fields: ProtoField[], field: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of fields) if (f.field === field && f.wire === 2) out.push(f.bytes);
  return out;
}

export function readString(fields: ProtoField[], field: number): string | undefined {
  const b = readBytesList(fields, field).at(-1);
  return b === undefined ? undefined : new TextDecoder().decode(b);
}

export function readInt(fields: ProtoField[], field: number): number | undefined {
  return readInts(fields, field).at(-1);
}
