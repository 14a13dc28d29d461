/**
 * Soft tokens as bytes: the manifest's declared dtype, little-endian, row-major `[tokens, dim]`.
 * float16 halves the size (an 896 px image's 4096×2048 tokens are 32 MiB in float32, 16 MiB in float16).
 */
import { ModelFormatError } from "../errors.ts";
import type { SoftTokens } from "../engine/types.ts";
import { fromHalf, toHalfArray } from "../model/half.ts";

/** Storage dtypes for soft tokens. */
export type SoftTokenDtype = "float32" | "float16";

/** Bytes per element of a storage dtype. */
export function bytesPerElement(dtype: SoftTokenDtype): number {
  return dtype === "float32" ? 4 : 2;
}

/** Checks that `dtype` is one this codec writes, so a manifest with another value fails loudly. */
export function asSoftTokenDtype(dtype: string): SoftTokenDtype {
  if (dtype === "float32" || dtype === "float16") return dtype;
  throw new ModelFormatError(`soft tokens: unsupported storage dtype "${dtype}"`);
}

/** Serialises `[tokens, dim]` float32 soft tokens to `dtype` bytes (little-endian). */
export function encodeSoftTokens(soft: SoftTokens, dtype: SoftTokenDtype): Uint8Array {
  if (soft.data.length !== soft.tokens * soft.dim) {
    throw new RangeError(`soft tokens: ${soft.data.length} values for [${soft.tokens}, ${soft.dim}]`);
  }
  if (dtype === "float16") {
    const half = toHalfArray(soft.data);
    const out = new Uint8Array(half.length * 2);
    const view = new DataView(out.buffer);
    for (let i = 0; i < half.length; i++) view.setUint16(i * 2, half[i], true);
    return out;
  }
  const out = new Uint8Array(soft.data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < soft.data.length; i++) view.setFloat32(i * 4, soft.data[i], true);
  return out;
}

/** Parses `dtype` bytes back to float32 soft tokens `[tokens, dim]`. */
export function decodeSoftTokens(bytes: Uint8Array, dtype: SoftTokenDtype, tokens: number, dim: number): SoftTokens {
  const size = bytesPerElement(dtype);
  if (bytes.length !== tokens * dim * size) {
    throw new ModelFormatError(`soft tokens: ${bytes.length} bytes for ${dtype}[${tokens}, ${dim}]`);
  }
  const data = new Float32Array(tokens * dim);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "float16") for (let i = 0; i < data.length; i++) data[i] = fromHalf(view.getUint16(i * 2, true));
  else for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  return { data, tokens, dim };
}
