/**
 * Builds the benchmark graphs with the converter's real builders (buildVisionStage, buildDecoderStage,
 * buildHeadStage) over synthetic weights, writing `<id>.onnx` + `<id>.bin` (external weights) to a folder.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDecoderStage } from "../converter/graphs/decoder.ts";
import { buildHeadStage } from "../converter/graphs/head.ts";
import type { WeightFormat } from "../converter/graphs/ops.ts";
import { buildVisionStage } from "../converter/graphs/vision.ts";
import { ModelProto } from "../converter/onnx/proto.ts";
import { WeightFile } from "../converter/weight-file.ts";
import { decodeFeeds, headFeeds, prefillFeeds, visionFeeds, type FeedSpec, type StageName } from "./feeds.ts";
import type { BenchShape } from "./shapes.ts";
import { syntheticFinalNorm, syntheticHeadRows, syntheticSource } from "./synthetic.ts";

/** A dtype row of the report: a weight format under a label such as `int4` or `int4-acc4`. */
export interface DtypeVariant {
  readonly label: string;
  readonly fmt: WeightFormat;
}

const BLOCK_SIZE = 32; // the converter's default MatMulNBits block along K

/** Parses `fp32`, `fp16`, `int8`, `int4`, optionally suffixed `-accN` (MatMulNBits accuracy_level N). */
export function parseDtype(label: string): DtypeVariant {
  const m = /^(fp32|fp16|int8|int4)(?:-acc([0-4]))?$/.exec(label);
  if (!m) throw new Error(`unknown dtype ${label}: use fp32, fp16, int8, int4, int8-acc4 or int4-acc4`);
  const dtype = m[1] as WeightFormat["dtype"];
  if (m[2] !== undefined && (dtype === "fp32" || dtype === "fp16")) throw new Error(`${label}: -acc applies to int8/int4 only`);
  return { label, fmt: { dtype, blockSize: BLOCK_SIZE, accuracyLevel: m[2] === undefined ? 0 : Number(m[2]) } };
}

/** One graph on disk, ready for any runtime. */
export interface BenchGraph {
  readonly id: string; // `<stage>-<dtype>`
  readonly stage: StageName;
  readonly dtype: string;
  readonly graphPath: string; // the .onnx file
  readonly weightsName: string; // external-data `location` the graph refers to (next to the .onnx)
  readonly weightsPath: string;
  readonly weightBytes: number; // bytes of the weight file
  /** ms of one run ÷ `perUnit` × `scale` = ms of one layer / one whole-head pass. */
  readonly perUnit: number;
  readonly scale: number;
  readonly feeds: FeedSpec[];
}

/** Builds `stage` at `variant` into `dir`. */
export function buildBenchGraph(shape: BenchShape, stage: StageName, variant: DtypeVariant, dir: string): BenchGraph {
  const c = shape.config;
  const id = `${stage}-${variant.label}`;
  const sink = new WeightFile(dir, `${id}.bin`);
  let graph: Uint8Array;
  let perUnit = 1;
  let scale = 1;
  let feeds: FeedSpec[];
  if (stage === "decode_layer" || stage === "prefill_layer") {
    // one graph for both: a decoder stage runs one token or a whole prompt over its cache
    const source = syntheticSource(c);
    graph = buildDecoderStage(c, shape.decoder, source, variant.fmt, sink);
    perUnit = shape.decoder.to - shape.decoder.from;
    feeds = stage === "decode_layer" ? decodeFeeds(shape) : prefillFeeds(shape);
  } else if (stage === "vision_layer") {
    const source = syntheticSource(c);
    graph = buildVisionStage(c, shape.vision, source, variant.fmt, sink);
    perUnit = shape.vision.to - shape.vision.from;
    feeds = visionFeeds(shape);
  } else {
    const rows = Math.min(shape.headRows, c.text.vocab);
    const spec = { from: 0, to: rows };
    graph = buildHeadStage(c, spec, syntheticHeadRows(c, 0, rows), syntheticFinalNorm(c), variant.fmt, sink);
    scale = c.text.vocab / rows; // one slice timed, the whole vocabulary extrapolated by rows
    feeds = headFeeds(shape);
  }
  const { bytes } = sink.finish();
  const graphPath = join(dir, `${id}.onnx`);
  writeFileSync(graphPath, graph);
  if (statSync(join(dir, sink.name)).size !== bytes) throw new Error(`${id}: weight file size mismatch`);
  return { id, stage, dtype: variant.label, graphPath, weightsName: sink.name, weightsPath: join(dir, sink.name), weightBytes: bytes, perUnit, scale, feeds };
}

/** True when two variants store identical weight bytes (they may differ in MatMulNBits accuracy_level). */
export function sameWeights(a: DtypeVariant, b: DtypeVariant): boolean {
  return a.fmt.dtype === b.fmt.dtype && a.fmt.blockSize === b.fmt.blockSize;
}

/**
 * `base`'s graph at `variant`'s MatMulNBits accuracy_level, sharing `base`'s weight file (accuracy_level is a
 * node attribute only; the bytes equal what the builder writes for `variant`, which test/bench checks).
 */
export function deriveVariant(base: BenchGraph, baseVariant: DtypeVariant, variant: DtypeVariant, dir: string): BenchGraph {
  if (!sameWeights(baseVariant, variant)) throw new Error(`${variant.label} cannot share the weights of ${baseVariant.label}`);
  const id = `${base.stage}-${variant.label}`;
  const graphPath = join(dir, `${id}.onnx`);
  writeFileSync(graphPath, withAccuracyLevel(readFileSync(base.graphPath), variant.fmt.accuracyLevel));
  return { ...base, id, dtype: variant.label, graphPath };
}

interface NodeMessage {
  opType: string;
  attribute: { name: string; i?: unknown }[];
}

/** Sets accuracy_level on every MatMulNBits node of a serialised model. */
export function withAccuracyLevel(graph: Uint8Array, level: number): Uint8Array {
  const model = ModelProto.decode(graph) as unknown as { graph: { node: NodeMessage[] } };
  let patched = 0;
  for (const node of model.graph.node) {
    if (node.opType !== "MatMulNBits") continue;
    const attr = node.attribute.find((a) => a.name === "accuracy_level");
    if (!attr) throw new Error("a MatMulNBits node has no accuracy_level attribute");
    attr.i = level;
    patched++;
  }
  if (patched === 0) throw new Error("the graph has no MatMulNBits node");
  return ModelProto.encode(model as never).finish();
}
