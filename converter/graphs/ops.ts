/**
 * Shared graph helpers (norms, linear layers, activations) used by the per-component builders.
 * Each takes the builder, input values and weights, and returns the output value; names are stable
 * prefixes such as `dec.l0.mlp`.
 */
import { bytesOf, type GraphBuilder, type Value } from "../onnx/builder.ts";
import type { DataTypeName } from "../onnx/proto.ts";
import { toHalfArray } from "../../shared/model/half.ts";
import { bitsOf, type WeightDtype } from "../../shared/model/weights.ts";
import { quantizeNBits } from "../quantize.ts";

/** How matrix weights are stored. */
export interface WeightFormat {
  readonly dtype: WeightDtype;
  readonly blockSize: number; // int8/int4 only
  readonly accuracyLevel: number; // MatMulNBits accuracy_level (0 = fp32 compute)
}

/** Row-major [rows, cols] → [cols, rows]. */
export function transpose2d(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

/** A weight tensor as a graph stores it: name, type, dims and little-endian bytes. */
export interface StoredTensor {
  readonly name: string;
  readonly type: DataTypeName;
  readonly dims: readonly number[];
  readonly bytes: Uint8Array;
}

/**
 * The tensors `linear` stores for an HF Linear weight `w` float32[outF, inF] (no bias): fp32/fp16 the transposed
 * `${name}.weight` [inF, outF]; int8/int4 `${name}.qweight` [outF, blocks, blob] then `${name}.scales` [outF·blocks].
 * MLP-part stages (converter/mlp-part.ts) store their slices through this too, so bytes match a graph's.
 */
export function linearTensors(fmt: WeightFormat, name: string, w: Float32Array, outF: number, inF: number): StoredTensor[] {
  if (w.length !== outF * inF) throw new Error(`${name}: weight has ${w.length} values, expected ${outF}×${inF}`);
  if (fmt.dtype === "fp32") return [{ name: `${name}.weight`, type: "FLOAT", dims: [inF, outF], bytes: bytesOf(transpose2d(w, outF, inF)) }];
  if (fmt.dtype === "fp16") return [{ name: `${name}.weight`, type: "FLOAT16", dims: [inF, outF], bytes: bytesOf(toHalfArray(transpose2d(w, outF, inF))) }];
  const bits = bitsOf(fmt.dtype);
  const q = quantizeNBits(w, { n: outF, k: inF, bits, blockSize: fmt.blockSize });
  const blocks = Math.ceil(inF / fmt.blockSize);
  return [
    { name: `${name}.qweight`, type: "UINT8", dims: [outF, blocks, (fmt.blockSize * bits) / 8], bytes: q.packed },
    { name: `${name}.scales`, type: "FLOAT", dims: [outF * blocks], bytes: bytesOf(q.scales) },
  ];
}

/**
 * y = x · Wᵀ (+ bias) for an HF Linear weight `w` float32[outF, inF]; x float32[..., inF].
 * fp32/fp16: MatMul against the transposed [inF, outF] matrix; int8/int4: MatMulNBits on [outF, inF].
 */
export function linear(
  b: GraphBuilder,
  fmt: WeightFormat,
  x: Value,
  name: string,
  w: Float32Array,
  outF: number,
  inF: number,
  bias: Float32Array | null = null,
): Value {
  const stored = linearTensors(fmt, name, w, outF, inF).map((t) => b.weight(t.name, t.type, t.dims, t.bytes));
  let y: Value;
  if (fmt.dtype === "fp32") {
    y = b.op("MatMul", [x, stored[0]], {}, name);
  } else if (fmt.dtype === "fp16") {
    y = b.op("MatMul", [x, b.op("Cast", [stored[0]], { to: 1 }, `${name}.weight_f32`)], {}, name);
  } else {
    const attrs = { K: inF, N: outF, bits: bitsOf(fmt.dtype), block_size: fmt.blockSize, accuracy_level: fmt.accuracyLevel };
    y = b.op("MatMulNBits", [x, stored[0], stored[1]], attrs, name, "com.microsoft");
  }
  if (!bias) return y;
  return b.op("Add", [y, b.weight(`${name}.bias`, "FLOAT", [outF], bytesOf(bias))], {}, `${name}.out`);
}

/** The tensor `rmsNorm` stores: `${name}.weight` float32[n] holding Gemma's (1 + w). */
export function rmsNormTensor(name: string, w: Float32Array): StoredTensor {
  return { name: `${name}.weight`, type: "FLOAT", dims: [w.length], bytes: bytesOf(Float32Array.from(w, (v) => 1 + v)) };
}

/** Gemma RMSNorm: x · rsqrt(mean(x²) + eps) · (1 + w), in float32; `onePlusW` is precomputed. */
export function rmsNorm(b: GraphBuilder, x: Value, name: string, w: Float32Array, eps: number): Value {
  const t = rmsNormTensor(name, w);
  const sq = b.op("Mul", [x, x], {}, `${name}.sq`);
  const mean = b.op("ReduceMean", [sq, b.constI64(`${name}.axes`, [-1])], { keepdims: 1 }, `${name}.mean`);
  const std = b.op("Sqrt", [b.op("Add", [mean, b.constF32(`${name}.eps`, [eps], [])], {}, `${name}.var`)], {}, `${name}.std`);
  const normed = b.op("Mul", [x, b.op("Reciprocal", [std], {}, `${name}.rstd`)], {}, `${name}.normed`);
  return b.op("Mul", [normed, b.weight(t.name, t.type, t.dims, t.bytes)], {}, name);
}

/** LayerNorm over the last axis (SigLIP). */
export function layerNorm(b: GraphBuilder, x: Value, name: string, w: Float32Array, bias: Float32Array, eps: number): Value {
  const g = b.weight(`${name}.weight`, "FLOAT", [w.length], bytesOf(w));
  const beta = b.weight(`${name}.bias`, "FLOAT", [bias.length], bytesOf(bias));
  return b.op("LayerNormalization", [x, g, beta], { axis: -1, epsilon: { float: eps } }, name);
}

/** gelu with the tanh approximation (gelu_pytorch_tanh), ONNX Gelu-20. */
export function geluTanh(b: GraphBuilder, x: Value, name: string): Value {
  return b.op("Gelu", [x], { approximate: "tanh" }, name);
}

/** cap · tanh(x / cap); identity when cap is null. */
export function softcap(b: GraphBuilder, x: Value, name: string, cap: number | null): Value {
  if (cap === null) return x;
  const c = b.constF32(`${name}.cap`, [cap], []);
  return b.op("Mul", [b.op("Tanh", [b.op("Div", [x, c], {}, `${name}.div`)], {}, `${name}.tanh`), c], {}, name);
}

export function reshape(b: GraphBuilder, x: Value, shape: readonly number[], name: string): Value {
  return b.op("Reshape", [x, b.constI64(`${name}.shape`, shape)], {}, name);
}

export function transpose(b: GraphBuilder, x: Value, perm: readonly number[], name: string): Value {
  return b.op("Transpose", [x], { perm: [...perm] }, name);
}
