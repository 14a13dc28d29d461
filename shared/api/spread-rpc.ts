/**
 * The stage contract's sequence-parallel prefill (an extension of shared/api/stage-rpc.ts): a chunk of one
 * session's prompt rows is cut into blocks spread over r replicas of a decoder stage (isolates holding the same
 * weights), and for every layer of the stage each replica computes its blocks' keys and values, the coordinator
 * gathers them in position order and hands every replica the whole chunk's, and each replica then attends its
 * blocks' rows over all of them and runs their MLP. Replicas never call each other.
 *
 *   coordinator ──prefillKeys(block rows)──────────▶ replica holding the block → keys/values of the stage's first layer
 *               ──prefillAttend(block, layer, kv)──▶ same replica              → the next layer's keys/values,
 *                                                                                or the block's rows after the stage
 *
 * One call does one layer of one block, so the rows per block bound the CPU time of a call (chunked prefill:
 * shared/pipeline/spread.ts). Each replica writes the chunk's keys and values of every layer into its cache, so
 * each one that held a block ends with the cache a whole-chunk prefill leaves (the coordinator keeps the first
 * replica's for decoding and drops the others').
 */

/** One block of a chunk of one session's rows. */
export interface SpreadBlockRequest {
  readonly session: string;
  /** Names this run of the chunk: the first block of a new run starts the stage's state for the session afresh. */
  readonly run: string;
  /** Cache position of the chunk's first row; position 0 starts the session's cache afresh. */
  readonly position: number;
  /** Rows in the chunk: cache positions [position, position + total). */
  readonly total: number;
  /** The block: rows [offset, offset + count) of the chunk. */
  readonly offset: number;
  readonly count: number;
}

/** A block's input rows f32[count, H] to the stage's first layer. */
export interface SpreadKeysRequest extends SpreadBlockRequest {
  readonly rows: Float32Array;
}

/** The whole chunk's keys and values of decoder layer `layer`, each f32[total, kvHeads · headDim], in position order. */
export interface SpreadAttendRequest extends SpreadBlockRequest {
  readonly layer: number;
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

/**
 * A replica's answer: the block's keys and values of `layer` (f32[count, kvHeads · headDim]: the coordinator
 * gathers them next), or the block's rows after the stage (and the MLP part's sum for a part of a cut layer) with
 * the cache's length; or a refusal when it does not hold the cache the chunk continues.
 */
export type SpreadReply =
  | { readonly ok: true; readonly kind: "keys"; readonly layer: number; readonly keys: Float32Array; readonly values: Float32Array }
  | { readonly ok: true; readonly kind: "rows"; readonly hidden: Float32Array; readonly partial: Float32Array | null; readonly length: number }
  | { readonly ok: false; readonly reason: "missing" | "behind"; readonly length: number };

/** A block of one image's N rows (patches) in a vision stage: rows [offset, offset + count). */
export interface VisionBlockRequest {
  /** Names this image's pass through the stage. */
  readonly run: string;
  readonly offset: number;
  readonly count: number;
}

/** Starts a block: pixels f32[1, 3, S, S] at the first stage (it embeds the block's patches), else the block's rows f32[count, D]. */
export interface VisionKeysRequest extends VisionBlockRequest {
  readonly input: Float32Array;
}

/** Every row's keys and values of vision layer `layer`, each f32[N, D], in patch order. */
export interface VisionAttendRequest extends VisionBlockRequest {
  readonly layer: number;
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

/**
 * A vision stage's answer: the block's keys and values of `layer` (f32[count, D]), or its rows after the stage
 * (f32[count, D]; the soft tokens f32[count, P] at the last stage), or `lost` when the stage no longer holds the
 * block (it restarted between calls: the coordinator runs the image again).
 */
export type VisionReply =
  | { readonly kind: "keys"; readonly layer: number; readonly keys: Float32Array; readonly values: Float32Array }
  | { readonly kind: "rows"; readonly rows: Float32Array }
  | { readonly kind: "lost" };

/** The sequence-parallel methods: decoder stages holding attention serve the prefill's, vision stages the image's. */
export interface SpreadRpc {
  /** Starts a block: its rows, and the keys and values of the stage's first layer back. */
  prefillKeys(req: SpreadKeysRequest): Promise<SpreadReply>;
  /** Attention over the chunk's keys and values of `layer` and the MLP for the block, then the next layer's keys. */
  prefillAttend(req: SpreadAttendRequest): Promise<SpreadReply>;
  /** Vision: starts a block of the image's rows, the stage's first layer's keys and values back. */
  visionKeys(req: VisionKeysRequest): Promise<VisionReply>;
  /** Vision: attention over every row's keys and values of `layer` and the MLP for the block, then the next layer's keys. */
  visionAttend(req: VisionAttendRequest): Promise<VisionReply>;
}

/**
 * The binding of replica `i` (1, 2, …) of stage `name` in the decoder worker's config: the stage's binding +
 * `_R<i>` (replica 0 is the stage's own binding, which keeps the caches the decode steps use).
 */
export function replicaBinding(stageBindingName: string, i: number): string {
  return `${stageBindingName}_R${i}`;
}
