/**
 * The stage worker: one stage of a model cut into stages (a vision layer range, a decoder layer range or a part
 * of a layer's MLP, or a vocabulary shard of the head), in an isolate of its own. The same script is deployed
 * once per stage, the stage named by the `STAGE` var of its config (scripts/stage-configs.ts writes them); the
 * session Durable Object (the coordinator) calls it over a service binding with the typed RPC of
 * shared/api/stage-rpc.ts. Stages never call each other. Its weights stream in from the model store (static
 * assets or R2) on the first call that needs them; per session it holds its layers' slice of the KV cache.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type { LogitsRequest, RowsReply, RowsRequest, StageInfo, StageLoaded, StageRpc } from "../../shared/api/stage-rpc.ts";
import type { SpreadAttendRequest, SpreadKeysRequest, SpreadReply, VisionAttendRequest, VisionKeysRequest, VisionReply } from "../../shared/api/spread-rpc.ts";
import { stageOf, type StageEnv } from "./stage.ts";

/** One stage's RPC entry point (and `GET /` → its {@link StageInfo}, for a look with curl). */
export default class StageService extends WorkerEntrypoint<StageEnv> implements StageRpc {
  override async fetch(): Promise<Response> {
    try {
      return Response.json(await this.describe());
    } catch (err) {
      return Response.json({ error: { type: "server_error", message: err instanceof Error ? err.message : String(err) } }, { status: 500 });
    }
  }

  /** Identity and state; loads nothing. */
  async describe(): Promise<StageInfo> {
    return (await stageOf(this.env)).describe();
  }

  /** Loads the weights if they are not in memory yet. */
  async load(): Promise<StageLoaded> {
    return (await stageOf(this.env)).load();
  }

  /** A chunk of one session's rows (the prompt's prefill). */
  async prefill(req: RowsRequest): Promise<RowsReply> {
    return (await stageOf(this.env)).prefill(req);
  }

  /** Sequence-parallel prefill: a block's rows in, the stage's first layer's keys and values out. */
  async prefillKeys(req: SpreadKeysRequest): Promise<SpreadReply> {
    return (await stageOf(this.env)).prefillKeys(req);
  }

  /** Sequence-parallel prefill: a layer's attention over the chunk's keys and values and its MLP, for a block. */
  async prefillAttend(req: SpreadAttendRequest): Promise<SpreadReply> {
    return (await stageOf(this.env)).prefillAttend(req);
  }

  /** Spread vision: a block of the image's rows in, the stage's first layer's keys and values out. */
  async visionKeys(req: VisionKeysRequest): Promise<VisionReply> {
    return (await stageOf(this.env)).visionKeys(req);
  }

  /** Spread vision: a layer's attention over every row's keys and values and its MLP, for a block. */
  async visionAttend(req: VisionAttendRequest): Promise<VisionReply> {
    return (await stageOf(this.env)).visionAttend(req);
  }

  /** One row for each of several sessions. */
  async step(batch: readonly RowsRequest[]): Promise<RowsReply[]> {
    return (await stageOf(this.env)).step(batch);
  }

  /** Frees these sessions' caches. */
  async drop(sessions: readonly string[]): Promise<void> {
    return (await stageOf(this.env)).drop(sessions);
  }

  /** Embedding rows of ids in this head shard. */
  async embed(ids: readonly number[]): Promise<Float32Array> {
    return (await stageOf(this.env)).embed(ids);
  }

  /** This head shard's logits of final rows. */
  async logits(req: LogitsRequest): Promise<Float32Array> {
    return (await stageOf(this.env)).logits(req);
  }

  /** Vision rows through this stage (with a LoRA adapter's vision updates when named). */
  async vision(input: Float32Array, adapter?: string | null): Promise<Float32Array> {
    return (await stageOf(this.env)).vision(input, adapter ?? null);
  }
}
