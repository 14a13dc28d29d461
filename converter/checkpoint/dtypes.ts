/**
 * safetensors element types: their sizes, and decoding of the float ones to float32.
 *
 * Byte sizes follow the safetensors format spec (huggingface/safetensors, `Dtype`). Only F32, F16 and BF16
 * can be decoded; the others are known so that a header using them is still parsed and reported by name.
 */
import { endianness } from "node:os";

/** Bytes per element of every dtype the safetensors format defines. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** The dtypes this converter can decode to float32. */
export type FloatDtype = "F32" | "F16" | "BF16";

/** True when `dtype` is one of the float types the converter reads. */
export function isFloatDtype(dtype: string): dtype is FloatDtype {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}

// Typed-array views below read the host's byte order; safetensors data is little-endian.
if (endianness() !== "LE") throw new Error("checkpoint reader: big-endian hosts are not supported");

/**
 * IEEE 754 binary16 → number: sign, 5-bit exponent (bias 15), 10-bit mantissa; exponent 0 is zero or a
 * subnormal (m · 2^-24), exponent 31 is ±Infinity (m = 0) or NaN.
 */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let halfTable: Float32Array | null = null; // [65536]: every binary16 bit pattern, decoded once

function halfLookup(): Float32Array {
  if (halfTable === null) {
    const table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = halfToFloat(h);
    halfTable = table;
  }
  return halfTable;
}

/**
 * Decodes little-endian tensor bytes of a float dtype to float32. The result never aliases `bytes`.
 * BF16 is the high half of a float32, so it is shifted up 16 bits (exact, NaN payloads kept).
 */
export function decodeToFloat32(dtype: FloatDtype, bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${dtype} data of ${bytes.byteLength} bytes is not a whole number of elements`);
  }
  const n = bytes.byteLength / size;
  if (dtype === "F32") {
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const src = aligned16(bytes);
  const out = new Float32Array(n);
  if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  } else {
    const table = halfLookup();
    for (let i = 0; i < n; i++) out[i] = table[src[i]];
  }
  return out;
}

/** A Uint16Array view of `bytes`, copying only when the offset is odd. */
function aligned16(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return new Uint16Array(bytes.slice().buffer);
}
