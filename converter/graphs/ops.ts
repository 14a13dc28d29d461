/**
 * Shared graph helpers (norms, linear layers, activations) used by the per-component builders.
 * Each takes the builder, input values and weights, and returns the output value; names are stable
 * prefixes such as `dec.l0.mlp`.
 */
import { bytesOf, type GraphBuilder, type Value } from "../onnx/builder.ts";
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
  if (w.length !== outF * inF) throw new Error(`${name}: weight has ${w.length} values, expected ${outF}×${inF}`);
  let y: Value;
  if (fmt.dtype === "fp32") {
    const wt = b.weight(`${name}.weight`, "FLOAT", [inF, outF], bytesOf(transpose2d(w, outF, inF)));
    y = b.op("MatMul", [x, wt], {}, name);
  } else if (fmt.dtype === "fp16") {
    const wt = b.weight(`${name}.weight`, "FLOAT16", [inF, outF], bytesOf(toHalfArray(transpose2d(w, outF, inF))));
    y = b.op("MatMul", [x, b.op("Cast", [wt], { to: 1 }, `${name}.weight_f32`)], {}, name);
  } else {
    const bits = bitsOf(fmt.dtype);
    const q = quantizeNBits(w, { n: outF, k: inF, bits, blockSize: fmt.blockSize });
    const blocks = Math.ceil(inF / fmt.blockSize);
    const packed = b.weight(`${name}.qweight`, "UINT8", [outF, blocks, (fmt.blockSize * bits) / 8], q.packed);
    const scales = b.weight(`${name}.scales`, "FLOAT", [outF * blocks], bytesOf(q.scales));
    const attrs = { K: inF, N: outF, bits, block_size: fmt.blockSize, accuracy_level: fmt.accuracyLevel };
    y = b.op("MatMulNBits", [x, packed, scales], attrs, name, "com.microsoft");
  }
  if (!bias) return y;
  return b.op("Add", [y, b.weight(`${name}.bias`, "FLOAT", [outF], bytesOf(bias))], {}, `${name}.out`);
}

/** Gemma RMSNorm: x · rsqrt(mean(x²) + eps) · (1 + w), in float32; `onePlusW` is precomputed. */
export function rmsNorm(b: GraphBuilder, x: Value, name: string, w: Float32Array, eps: number): Value {
  const onePlusW = Float32Array.from(w, (v) => 1 + v);
  const sq = b.op("Mul", [x, x], {}, `${name}.sq`);
  const mean = b.op("ReduceMean", [sq, b.constI64(`${name}.axes`, [-1])], { keepdims: 1 }, `${name}.mean`);
  const std = b.op("Sqrt", [b.op("Add", [mean, b.constF32(`${name}.eps`, [eps], [])], {}, `${name}.var`)], {}, `${name}.std`);
  const normed = b.op("Mul", [x, b.op("Reciprocal", [std], {}, `${name}.rstd`)], {}, `${name}.normed`);
  return b.op("Mul", [normed, b.weight(`${name}.weight`, "FLOAT", [w.length], bytesOf(onePlusW))], {}, name);
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
