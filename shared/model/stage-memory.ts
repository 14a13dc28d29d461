/**
 * What one stage holds in memory once its engine has loaded it (its resident size): pure functions of the model
 * config, the weight format, the stage and the budget parameters. The converter plans stages with it
 * (`--max-stage-mb`), the manifest records its answer per stage, the kernel engine and the memory bench compare it
 * with what they measure. Bytes throughout; MB in messages = 10^6 bytes.
 *
 * The memory format the kernel engine keeps (one all-kernel engine per stage, weights held once):
 * - a matrix W[n, k] (one output per row): int8/int4 exactly as stored, codes n·blocks·blockBytes + float32 scales
 *   n·blocks (blocks = ⌈k / blockSize⌉); fp32 4·n·k; fp16 widened to float32, 4·n·k. Vision matrices alike (int8/int4
 *   are never widened). Norms, biases, the patch convolution and position embeddings: float32 as stored.
 *   Every tensor is its own heap block, rounded up to 64 bytes (shared/kernel/heap.ts).
 * - KV cache, per attention layer: sessions × context × kvHeads × headDim float32 keys, and as many values.
 * - scratch: activations of one call, laid out below per stage kind (the GEMMs repack A rows and dequantise one
 *   8-row panel of W at a time: kernels/assembly/gemm-w.ts), plus the JavaScript arrays a call passes in and out.
 * - code and runtime: a fixed allowance, CODE_BYTES (VISION_CODE_BYTES for vision stages), measured.
 * - LoRA adapters: the stage's adapter cache budget (`adapterBytes`, the stage worker's ADAPTER_CACHE_MB), for
 *   vision and decoder stages (adapters never touch the head). 0 by default: plans made without it are unchanged.
 *   The cache keeps the adapter just asked for even when its factors alone pass the budget, so the term bounds
 *   the factors held only while each adapter's factors for the stage fit it.
 *
 * A decoder stage is whole layers [from, to) or one part of one layer: `mlp` = the intermediate rows [from, to) it
 * computes (gate/up rows, down columns), `attention` false for a part without the attention block. A part of a
 * parallel cut holds the attention like the first part of a sequential one: its weights, KV cache and scratch.
 */
import type { ModelConfig } from "./config.ts";
import { bitsOf, isQuantized, type WeightDtype } from "./weights.ts";

/** How matrix weights are stored (the manifest's `weights`). */
export interface StageWeights {
  readonly dtype: WeightDtype;
  readonly blockSize: number; // int8/int4 block along k
}

/** What a stage must hold besides its weights (the manifest's `budget`, less maxStageBytes). */
export interface StageBudget {
  readonly sessions: number; // sessions whose KV caches one decoder stage holds at once
  readonly context: number; // tokens of context per session
  readonly prefillRows: number; // P: rows one prefill call handles (the whole bidirectional prefix)
  readonly adapterBytes: number; // LoRA factors a vision or decoder stage keeps at once (its adapter cache budget)
}

/**
 * Defaults: 4 sessions of 1024 tokens per decoder stage, and prefill calls of up to 320 rows (a 224-px model's 256
 * image tokens plus 64 of text; set --stage-prefill-rows for 448/896-px models and long prompts), and no room
 * for adapters (set --stage-adapter-mb to the ADAPTER_CACHE_MB the stages will run with).
 */
export const DEFAULT_STAGE_BUDGET: StageBudget = Object.freeze({ sessions: 4, context: 1024, prefillRows: 320, adapterBytes: 0 });

/** One stage as planned: layers (vision, decoder) or vocabulary rows (head) [from, to). */
export interface StageSpec {
  readonly kind: "vision" | "decoder" | "head";
  readonly from: number;
  readonly to: number;
  /** Decoder parts only: intermediate rows [from, to) of the one layer's MLP; absent = all. */
  readonly mlp?: { readonly from: number; readonly to: number };
  /** Decoder parts only: false for an MLP-only part; absent = true. */
  readonly attention?: boolean;
  /** Decoder parts only: "parallel" when every part of the layer holds the attention (the estimate reads `attention`). */
  readonly cut?: "sequential" | "parallel";
}

export interface StageEstimate {
  readonly residentBytes: number; // the sum of the five terms
  readonly weightBytes: number;
  readonly cacheBytes: number;
  readonly scratchBytes: number;
  readonly codeBytes: number;
  readonly adapterBytes: number; // the adapter cache budget (0 for head stages)
}

/**
 * Code and runtime per stage, beyond the kernel memory and the call's arrays: the kernel builds' compiled code
 * (and the optimising compiler's memory when a kernel gets hot), the JS bundle's objects, the parsed manifest, the
 * loader's 1 MiB staging block, fetch and socket buffers, and V8's own heap growth over a worker with no model.
 * Measured by `npm run bench -- --memory` (PaliGemma-3B shapes, int8 and int4, several runs): decoder and head
 * stages peak 8–14 MB above their kernel memory and call arrays, vision stages 13–15.5 MB (their float32 GEMMs
 * get optimised too). The allowances cover the largest seen.
 */
export const CODE_BYTES = 14_000_000;
/** The vision stages' allowance (see {@link CODE_BYTES}). */
export const VISION_CODE_BYTES = 17_000_000;
/** Rows per chunk of the decoder's prefill (R, a multiple of the GEMM's 6-row tile): everything but x and the queries is held for R rows only. */
export const ROW_CHUNK = 66;

/**
 * Intermediate columns the prefill's MLP computes at a time (gate/up for a block of columns, then its share of
 * the down projection accumulated): the MLP's scratch is [R, MLP_COLUMNS] whatever the intermediate size.
 * A multiple of every block size (32, 64, 128).
 */
export const MLP_COLUMNS = 2048;
/** Columns of W one GEMM panel holds (kernels/assembly/gemm-w.ts NR). */
export const PANEL = 8;
/** Rows a head stage scores per call: it only ever receives the last row(s) it must score. */
export const HEAD_ROWS = 8;

const F32 = 4;
const ALIGN = 64;

/** Resident bytes of one stage, by term. */
export function estimateStage(c: ModelConfig, w: StageWeights, s: StageSpec, b: StageBudget): StageEstimate {
  checkSpec(c, s);
  const [weightBytes, cacheBytes, scratchBytes] =
    s.kind === "decoder" ? [decoderWeights(c, w, s), decoderCache(c, s, b), decoderScratch(c, s, b)]
    : s.kind === "vision" ? [visionWeights(c, w, s), 0, visionScratch(c, s)]
    : [headWeights(c, w, s), 0, headScratch(c, s)];
  const codeBytes = s.kind === "vision" ? VISION_CODE_BYTES : CODE_BYTES;
  const adapterBytes = s.kind === "head" ? 0 : b.adapterBytes;
  return { residentBytes: weightBytes + cacheBytes + scratchBytes + codeBytes + adapterBytes, weightBytes, cacheBytes, scratchBytes, codeBytes, adapterBytes };
}

/** MLP part bounds are multiples of this: quantisation blocks of the down projection (along the intermediate
 * dimension) are never split, and gate/up slices start on a GEMM panel. */
export function mlpPartUnit(w: StageWeights): number {
  return lcm(w.blockSize, PANEL);
}

/** Bytes of W[n, k] in memory. */
export function matrixBytes(n: number, k: number, w: StageWeights): number {
  if (!isQuantized(w.dtype)) return aligned(F32 * n * k); // fp16 widened to float32
  const blocks = Math.ceil(k / w.blockSize);
  return aligned((n * blocks * w.blockSize * bitsOf(w.dtype)) / 8) + aligned(F32 * n * blocks); // codes + scales
}

/** Bytes of a float32 vector (norm, bias) in memory. */
function vectorBytes(n: number): number {
  return aligned(F32 * n);
}

function decoderWeights(c: ModelConfig, w: StageWeights, s: StageSpec): number {
  const t = c.text;
  const q = t.heads * t.headDim;
  const kv = t.kvHeads * t.headDim;
  const m = mlpRows(c, s);
  const gemma2 = t.family === "gemma2";
  let bytes = 0;
  for (let l = s.from; l < s.to; l++) {
    if (s.attention !== false) {
      bytes += matrixBytes(q, t.hidden, w) + 2 * matrixBytes(kv, t.hidden, w) + matrixBytes(t.hidden, q, w); // q, k, v, o
      bytes += vectorBytes(t.hidden) * (gemma2 ? 2 : 1); // input_norm; Gemma 2's post_attn_norm
    }
    bytes += vectorBytes(t.hidden) * (gemma2 ? 2 : 1); // the MLP's input norm (pre_ff / Gemma 1's post_attn); post_ff
    bytes += 2 * matrixBytes(m, t.hidden, w) + matrixBytes(t.hidden, m, w); // gate, up [m, H]; down [H, m]
  }
  return bytes;
}

/** Keys and values, float32, for every session at full context (sliding layers too: window ≥ context here). */
function decoderCache(c: ModelConfig, s: StageSpec, b: StageBudget): number {
  if (s.attention === false) return 0;
  const t = c.text;
  return (s.to - s.from) * b.sessions * b.context * t.kvHeads * t.headDim * F32 * 2;
}

/** One call's activations; layers of a stage run one after another over the same scratch. */
function decoderScratch(c: ModelConfig, s: StageSpec, b: StageBudget): number {
  const t = c.text;
  const h = t.hidden;
  const attn = s.attention !== false;
  const q = attn ? t.heads * t.headDim : 0; // query width (0: no attention in this part)
  const kv = attn ? t.kvHeads * t.headDim : 0;
  const m = mlpRows(c, s);
  const mc = Math.min(m, MLP_COLUMNS); // MLP columns per block
  const p = b.prefillRows;
  const r = Math.min(ROW_CHUNK, p);
  const maxK = Math.max(h, q, mc, attn ? b.context : 0); // widest input a GEMM reads (down: a column block; P·V: the context)
  const part = s.mlp !== undefined && s.mlp.to - s.mlp.from < t.intermediate;
  // kept for all P rows: x [P, H], queries [P, heads·hd] and RoPE cos/sin [P, hd] (with attention), the parts' sum [P, H]
  const whole = p * (h + q) + (attn ? 2 * p * t.headDim : 0) + (part ? p * h : 0);
  const chunk =
    r * h + // normed rows [R, H]
    2 * r * kv + // k, v [R, kvHeads·hd] before they go to the cache
    r * q + // attention output [R, heads·hd]
    (attn ? r * b.context : 0) + // attention scores [R, context], one head at a time
    (attn ? 2 * t.kvHeads * t.headDim * b.context : 0) + // keys and values packed for the GEMMs [kvHeads, hd, context] each
    2 * r * mc + // gate, up [R, MLP block]
    r * h + // the block output [R, H]
    r * maxK + // A repacked [R, max k]
    PANEL * maxK; // one dequantised panel of W [8, max k]
  const js = (part ? 3 : 2) * p * h; // the call's input and output hidden rows [P, H] (and a part's sum), in JavaScript
  const decode = 4 * h + 2 * q + 2 * kv + 2 * m + (attn ? t.heads * b.context : 0); // one row's vectors and scores
  return F32 * (whole + chunk + js + decode);
}

function visionWeights(c: ModelConfig, w: StageWeights, s: StageSpec): number {
  const v = c.vision;
  const d = v.hidden;
  const bias = (n: number) => vectorBytes(Math.ceil(n / PANEL) * PANEL); // gemm biases are padded to a panel
  const layer =
    4 * (matrixBytes(d, d, w) + bias(d)) + // q, k, v, o
    matrixBytes(v.intermediate, d, w) + bias(v.intermediate) + // fc1
    matrixBytes(d, v.intermediate, w) + bias(d) + // fc2
    4 * vectorBytes(d); // ln1, ln2 weight and bias
  let bytes = (s.to - s.from) * layer;
  if (s.from === 0) bytes += aligned(F32 * d * 3 * v.patchSize ** 2) + vectorBytes(d) + vectorBytes(c.imageTokens * d); // patch conv, positions
  if (s.to === v.layers) bytes += 2 * vectorBytes(d) + matrixBytes(c.projectionDim, d, w) + bias(c.projectionDim); // post-LN, projector
  return bytes;
}

/** The whole encoder runs over all N tokens at once (kernel/vision.ts's layout). */
function visionScratch(c: ModelConfig, s: StageSpec): number {
  const v = c.vision;
  const n = c.imageTokens;
  const d = v.hidden;
  const i = v.intermediate;
  const hd = d / v.heads;
  const pad = (x: number) => Math.ceil(x / PANEL) * PANEL;
  const first = s.from === 0;
  const last = s.to === v.layers;
  const pp = 3 * v.patchSize ** 2; // a patch, unrolled
  const maxK = Math.max(d, i, n, first ? pp : 0);
  const kernel =
    n * d + // x [N, D]
    n * d + // normed [N, D]
    3 * n * d + // qkv [N, 3D]
    n * d + // ctx [N, D]
    n * n + // scores [N, N], one head at a time
    hd * pad(n) + n * pad(hd) + // one head's Kᵀ and V packed for the GEMM
    n * i + // mid [N, I]
    n * maxK + // A repacked [N, max k]
    PANEL * maxK + // one dequantised panel of W
    (first ? n * pp : 0) + // patches [N, 3p²]
    (last ? n * c.projectionDim : 0); // soft tokens [N, P]
  const js = (first ? 3 * v.imageSize ** 2 : n * d) + (last ? n * c.projectionDim : n * d); // pixels or rows in, rows or soft tokens out
  return F32 * (kernel + js);
}

function headWeights(c: ModelConfig, w: StageWeights, s: StageSpec): number {
  return matrixBytes(s.to - s.from, c.text.hidden, w) + vectorBytes(c.text.hidden); // tied embedding rows, final norm
}

function headScratch(c: ModelConfig, s: StageSpec): number {
  const h = c.text.hidden;
  const rows = s.to - s.from;
  return F32 * HEAD_ROWS * (
    2 * rows + // logits [8, rows] in kernel memory and in JavaScript
    2 * h + // the input rows in JavaScript, normed in kernel memory [8, H]
    h) + // A repacked [8, H]
    F32 * PANEL * h; // one dequantised panel of W
}

function mlpRows(c: ModelConfig, s: StageSpec): number {
  return s.mlp ? s.mlp.to - s.mlp.from : c.text.intermediate;
}

function checkSpec(c: ModelConfig, s: StageSpec): void {
  if (s.from >= s.to) throw new Error(`${s.kind} stage [${s.from}, ${s.to}) is empty`);
  const part = s.mlp !== undefined || s.attention === false;
  if (part && (s.kind !== "decoder" || s.to !== s.from + 1)) throw new Error(`only a one-layer decoder stage can be an MLP part (${s.kind} [${s.from}, ${s.to}))`);
  if (s.mlp && !(0 <= s.mlp.from && s.mlp.from < s.mlp.to && s.mlp.to <= c.text.intermediate)) {
    throw new Error(`MLP part [${s.mlp.from}, ${s.mlp.to}) is not inside [0, ${c.text.intermediate})`);
  }
}

function aligned(bytes: number): number {
  return Math.ceil(bytes / ALIGN) * ALIGN;
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}
