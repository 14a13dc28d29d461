/**
 * A decoder stage's side of the sequence-parallel prefill (shared/api/spread-rpc.ts): per session, the chunk
 * being prefilled and the blocks of it this replica holds between calls (their rows and the current layer's
 * queries), run through the kernel engine's two passes (shared/kernel/prefill-spread.ts).
 */
import type { RowsReply } from "../api/stage-rpc.ts";
import type { SpreadAttendRequest, SpreadBlockRequest, SpreadKeysRequest, SpreadReply, VisionAttendRequest, VisionKeysRequest, VisionReply } from "../api/spread-rpc.ts";
import { InputError } from "../errors.ts";
import type { KvSequence } from "../kernel/cache.ts";
import type { KernelModel } from "../kernel/model.ts";
import type { SpreadBlock } from "../kernel/prefill-spread.ts";
import type { VisionBlock } from "../kernel/vision-spread.ts";

/** A refusal: the stage does not hold the cache the rows continue. */
type Refusal = RowsReply & { ok: false };

/** How the stage's session caches are reached. */
export interface SpreadHost {
  /** The session's cache continued at `position` (a fresh one at 0), or why it cannot be. */
  open(session: string, position: number): KvSequence | Refusal;
  /** The session's cache, if held. */
  get(session: string): KvSequence | undefined;
}

interface Chunk {
  readonly run: string;
  readonly position: number;
  readonly total: number;
  /** The blocks held here, by offset. */
  readonly blocks: Map<number, HeldBlock>;
}

/** A block and the last answer it gave (a call retried after its answer was lost gets that answer again). */
interface HeldBlock {
  readonly rows: SpreadBlock;
  last: { readonly layer: number; readonly reply: SpreadReply } | null;
}

/** A decoder stage's spread-prefill state: per session the chunk in flight and the blocks held here. */
export class SpreadSessions {
  private readonly chunks = new Map<string, Chunk>();

  constructor(
    private readonly host: SpreadHost,
    private readonly hidden: number,
  ) {}

  /** Blocks held between calls, over every session. */
  get blocks(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.blocks.size;
    return n;
  }

  /** Starts a block: keys and values of the stage's first layer (a new run opens the session's cache at `position`). */
  keys(model: KernelModel, req: SpreadKeysRequest): SpreadReply {
    check(req);
    if (req.rows.length !== req.count * this.hidden) throw new InputError("invalid_request", `a block's rows must be f32[${req.count}, ${this.hidden}], got ${req.rows.length} values`, "rows");
    let chunk = this.chunks.get(req.session);
    if (!chunk || chunk.run !== req.run) {
      const seq = this.host.open(req.session, req.position);
      if (!("reserve" in seq)) return seq;
      seq.reserve(req.position + req.total);
      chunk = { run: req.run, position: req.position, total: req.total, blocks: new Map() };
      this.chunks.set(req.session, chunk);
    }
    if (chunk.position !== req.position || chunk.total !== req.total) throw new InputError("invalid_request", `run ${req.run} is the chunk [${chunk.position}, +${chunk.total}), not [${req.position}, +${req.total})`, "run");
    const block: SpreadBlock = { hidden: req.rows.slice(), queries: null };
    chunk.blocks.set(req.offset, { rows: block, last: null });
    const layer = model.layers[0].index;
    const kv = model.spread().keys(layer, block, req.count, req.position + req.offset, req.position + req.total);
    return { ok: true, kind: "keys", layer, keys: kv.keys, values: kv.values };
  }

  /** Layer `req.layer` for a block held here, then the next layer's keys, or the block's rows after the stage. */
  attend(model: KernelModel, req: SpreadAttendRequest): SpreadReply {
    check(req);
    const chunk = this.chunks.get(req.session);
    const held = chunk?.run === req.run ? chunk.blocks.get(req.offset) : undefined;
    const seq = this.host.get(req.session);
    // Lost between calls (the stage restarted or dropped the session): the coordinator rebuilds by replay.
    if (!chunk || !held || !seq) return { ok: false, reason: "missing", length: seq?.length ?? 0 };
    if (held.last?.layer === req.layer) return held.last.reply; // a retry: the layer ran already
    const block = held.rows;
    const spread = model.spread();
    const end = req.position + req.total;
    const partial = spread.attend(seq, req.layer, block, req.count, req.position + req.offset, req.position, { keys: req.keys, values: req.values }, req.total);
    const next = spread.next(req.layer);
    if (next !== null) {
      const kv = spread.keys(next, block, req.count, req.position + req.offset, end);
      const reply: SpreadReply = { ok: true, kind: "keys", layer: next, keys: kv.keys, values: kv.values };
      held.last = { layer: req.layer, reply };
      return reply;
    }
    seq.length = end;
    chunk.blocks.delete(req.offset);
    if (chunk.blocks.size === 0) this.chunks.delete(req.session);
    return { ok: true, kind: "rows", hidden: block.hidden, partial, length: end };
  }

  /** Forgets a session's blocks. */
  drop(session: string): void {
    this.chunks.delete(session);
  }
}

/** @throws InputError for a block outside its chunk or malformed numbers. */
function check(req: SpreadBlockRequest): void {
  const ints = [req.position, req.total, req.offset, req.count];
  if (!ints.every((x) => Number.isInteger(x) && x >= 0) || req.count < 1 || req.offset + req.count > req.total) {
    throw new InputError("invalid_request", `a block is rows [offset, offset + count) of a chunk of total rows at position ≥ 0, got ${JSON.stringify({ position: req.position, total: req.total, offset: req.offset, count: req.count })}`, "count");
  }
  if (typeof req.run !== "string" || !req.run) throw new InputError("invalid_request", "a block names its run", "run");
}

/** Images whose blocks a vision stage keeps between calls at most (the oldest run is dropped first). */
const VISION_RUNS = 8;

/** A vision stage's side of the spread tower: the blocks of the images in flight, by run and offset. */
export class VisionSessions {
  private readonly runs = new Map<string, Map<number, VisionBlock>>();

  /** Starts a block: embedded (first stage) or as given, then the first layer's keys (or the rows when it holds no layer). */
  keys(model: KernelModel, req: VisionKeysRequest): VisionReply {
    const { imageTokens: n, vision: v } = model.manifest.config;
    if (!Number.isInteger(req.offset) || !Number.isInteger(req.count) || req.offset < 0 || req.count < 1 || req.offset + req.count > n) {
      throw new InputError("invalid_request", `a block is rows [offset, offset + count) of the image's ${n}, got [${req.offset}, +${req.count})`, "count");
    }
    const spread = model.visionSpread();
    const first = model.vision[0]?.embed ?? null;
    if (!first && req.input.length !== req.count * v.hidden) throw new InputError("invalid_request", `a block's rows must be f32[${req.count}, ${v.hidden}]`, "input");
    const block: VisionBlock = { hidden: first ? spread.embed(req.input, req.offset, req.count) : req.input.slice(), queries: null };
    const layers = spread.layers;
    if (!layers.length) return this.done(model, block, req.count);
    if (!this.runs.has(req.run)) {
      while (this.runs.size >= VISION_RUNS) this.runs.delete(this.runs.keys().next().value!);
      this.runs.set(req.run, new Map());
    }
    this.runs.get(req.run)!.set(req.offset, block);
    const kv = spread.keys(layers[0], block, req.count);
    return { kind: "keys", layer: layers[0], keys: kv.keys, values: kv.values };
  }

  /** Layer `req.layer` for a block held here, then the next layer's keys, or the block's rows after the stage. */
  attend(model: KernelModel, req: VisionAttendRequest): VisionReply {
    const blocks = this.runs.get(req.run);
    const block = blocks?.get(req.offset);
    if (!blocks || !block) return { kind: "lost" };
    const spread = model.visionSpread();
    spread.attend(req.layer, block, req.count, req.keys, req.values);
    const layers = spread.layers;
    const next = layers[layers.indexOf(req.layer) + 1];
    if (next !== undefined) {
      const kv = spread.keys(next, block, req.count);
      return { kind: "keys", layer: next, keys: kv.keys, values: kv.values };
    }
    blocks.delete(req.offset);
    if (!blocks.size) this.runs.delete(req.run);
    return this.done(model, block, req.count);
  }

  /** The block's rows out of the stage: projected to soft tokens at the last stage. */
  private done(model: KernelModel, block: VisionBlock, m: number): VisionReply {
    return { kind: "rows", rows: model.vision.at(-1)?.head ? model.visionSpread().project(block, m) : block.hidden };
  }
}
