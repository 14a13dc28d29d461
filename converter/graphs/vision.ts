/**
 * SigLIP vision stage: patch-embedding conv → + position embedding → encoder layers [from, to) →
 * post-LayerNorm → projector. A stage that does not start at layer 0 takes `vision_hidden` instead of
 * pixels; one that does not end at the last layer returns `vision_hidden` instead of soft tokens.
 *
 *   pixel_values  float32[1, 3, S, S]
 *   vision_hidden float32[N, Dv]       (N = (S/patch)², row-major patches)
 *   soft_tokens   float32[N, P]        projector output, unscaled (P = text hidden)
 */
import { bytesOf, GraphBuilder, type Value, type WeightSink } from "../onnx/builder.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { geluTanh, layerNorm, linear, reshape, transpose, type WeightFormat } from "./ops.ts";
import type { TensorSource } from "./tensors.ts";
import { hfNames } from "../checkpoint/names.ts";

export interface VisionStageSpec {
  readonly from: number;
  readonly to: number;
}

export function buildVisionStage(
  config: ModelConfig,
  spec: VisionStageSpec,
  weights: TensorSource,
  fmt: WeightFormat,
  sink: WeightSink,
): Uint8Array {
  const v = config.vision;
  const n = config.imageTokens;
  const b = new GraphBuilder(`vision_${spec.from}_${spec.to}`, sink);
  const first = spec.from === 0;
  const last = spec.to === v.layers;

  let x: Value = first
    ? embedPatches(b, config, weights, b.input("pixel_values", "FLOAT", [1, 3, v.imageSize, v.imageSize]))
    : b.input("vision_hidden", "FLOAT", [n, v.hidden]);
  for (let i = spec.from; i < spec.to; i++) x = encoderLayer(b, config, weights, fmt, x, i);

  if (!last) {
    b.output(x, "vision_hidden", "FLOAT", [n, v.hidden]);
    return b.toBytes();
  }
  const post = hfNames.postLayernorm;
  const normed = layerNorm(b, x, "vis.post_ln", weights.get(post.weight), weights.get(post.bias), v.layerNormEps);
  const proj = hfNames.projector;
  const out = linear(b, fmt, normed, "proj", weights.get(proj.weight), config.projectionDim, v.hidden, weights.get(proj.bias));
  b.output(out, "soft_tokens", "FLOAT", [n, config.projectionDim]);
  return b.toBytes();
}

function embedPatches(b: GraphBuilder, config: ModelConfig, weights: TensorSource, pixels: Value): Value {
  const v = config.vision;
  const p = v.patchSize;
  const e = hfNames.patchEmbedding;
  const kernel = b.weight("vis.patch.weight", "FLOAT", [v.hidden, 3, p, p], bytesOf(weights.get(e.weight)));
  const bias = b.weight("vis.patch.bias", "FLOAT", [v.hidden], bytesOf(weights.get(e.bias)));
  const conv = b.op("Conv", [pixels, kernel, bias], { kernel_shape: [p, p], strides: [p, p] }, "vis.patch"); // [1, Dv, g, g]
  const flat = transpose(b, reshape(b, conv, [v.hidden, config.imageTokens], "vis.patch.flat"), [1, 0], "vis.patches"); // [N, Dv]
  const pos = b.weight("vis.pos", "FLOAT", [config.imageTokens, v.hidden], bytesOf(weights.get(hfNames.positionEmbedding)));
  return b.op("Add", [flat, pos], {}, "vis.embed");
}

function encoderLayer(b: GraphBuilder, config: ModelConfig, weights: TensorSource, fmt: WeightFormat, x: Value, i: number): Value {
  const v = config.vision;
  const n = config.imageTokens;
  const hd = v.hidden / v.heads;
  const t = hfNames.visionLayer(i);
  const p = `vis.l${i}`;
  const lin = (h: Value, name: string, w: { weight: string; bias: string }, outF: number, inF: number) =>
    linear(b, fmt, h, `${p}.${name}`, weights.get(w.weight), outF, inF, weights.get(w.bias));

  const h = layerNorm(b, x, `${p}.ln1`, weights.get(t.layerNorm1.weight), weights.get(t.layerNorm1.bias), v.layerNormEps);
  const heads = (y: Value, name: string) => transpose(b, reshape(b, y, [n, v.heads, hd], `${p}.${name}.split`), [1, 0, 2], `${p}.${name}.heads`); // [heads, N, hd]
  const q = heads(lin(h, "q", t.qProj, v.hidden, v.hidden), "q");
  const kT = transpose(b, reshape(b, lin(h, "k", t.kProj, v.hidden, v.hidden), [n, v.heads, hd], `${p}.k.split`), [1, 2, 0], `${p}.k.heads_t`); // [heads, hd, N]
  const val = heads(lin(h, "v", t.vProj, v.hidden, v.hidden), "v");
  const scores = b.op("Mul", [b.op("MatMul", [q, kT], {}, `${p}.qk`), b.constF32(`${p}.scale`, [hd ** -0.5], [])], {}, `${p}.scores`);
  const probs = b.op("Softmax", [scores], { axis: -1 }, `${p}.probs`);
  const ctx = b.op("MatMul", [probs, val], {}, `${p}.ctx`); // [heads, N, hd]
  const merged = reshape(b, transpose(b, ctx, [1, 0, 2], `${p}.ctx.t`), [n, v.hidden], `${p}.ctx.merged`);
  const attn = lin(merged, "o", t.outProj, v.hidden, v.hidden);
  const x1 = b.op("Add", [x, attn], {}, `${p}.attn_res`);

  const h2 = layerNorm(b, x1, `${p}.ln2`, weights.get(t.layerNorm2.weight), weights.get(t.layerNorm2.bias), v.layerNormEps);
  const act = geluTanh(b, lin(h2, "fc1", t.fc1, v.intermediate, v.hidden), `${p}.gelu`);
  const mlp = lin(act, "fc2", t.fc2, v.hidden, v.intermediate);
  return b.op("Add", [x1, mlp], {}, `${p}.out`);
}
