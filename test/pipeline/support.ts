/**
 * Pipelines in one process for the tests: a converted model's stages each in a kernel instance of its own
 * (KernelStage, the stage Worker's engine), coordinated by a PipelineEngine, next to the same checkpoint
 * converted whole. Stages can be restarted (a fresh instance: weights and caches gone) or cut off (every call
 * throws, as an unreachable service binding does).
 */
import { folderStore, loadModel } from "../../cli/node-runtime.ts";
import { convert, type ConvertOptions } from "../../converter/convert.ts";
import type { StageRpc } from "../../shared/api/stage-rpc.ts";
import { openFrom, readManifest, type Engine } from "../../shared/engine/engine.ts";
import type { SoftTokens } from "../../shared/engine/types.ts";
import { generate, type GenerateOptions, type GeneratedToken } from "../../shared/generation/generate.ts";
import type { Manifest } from "../../shared/model/manifest.ts";
import { PipelineEngine, type PipelineOptions } from "../../shared/pipeline/coordinator.ts";
import { KernelStage, type KernelStageOptions } from "../../shared/pipeline/kernel-stage.ts";

/** A stage that can be restarted or cut off. */
export class TestStage {
  inner: KernelStage;
  down = false;
  /** Calls received, by method. */
  readonly calls: Record<string, number> = {};
  /** Runs before each call is forwarded (a test restarting the stage mid-prefill). */
  onCall: ((method: string) => void) | null = null;
  constructor(private readonly make: () => KernelStage) {
    this.inner = make();
  }
  /** A fresh instance: weights unloaded, every session's cache gone. */
  restart(): void {
    this.inner = this.make();
  }
  /** The stage contract, forwarding to the current instance (throwing while down). */
  rpc(): StageRpc {
    const call = <M extends keyof StageRpc>(m: M) => (...args: unknown[]) => {
      if (this.down) return Promise.reject(new Error(`stage unreachable (test)`));
      this.calls[m] = (this.calls[m] ?? 0) + 1;
      this.onCall?.(m);
      return (this.inner[m] as (...a: unknown[]) => Promise<unknown>).apply(this.inner, args);
    };
    const names = ["describe", "load", "prefill", "prefillKeys", "prefillAttend", "visionKeys", "visionAttend", "step", "drop", "embed", "logits", "vision"] as const;
    return Object.fromEntries(names.map((n) => [n, call(n)])) as unknown as StageRpc;
  }
}

/** A converted model served as a pipeline of in-process stages. */
export interface TestPipeline {
  readonly manifest: Manifest;
  readonly engine: PipelineEngine;
  readonly stages: Map<string, TestStage>;
  /** Each decoder stage's further replicas (none unless asked). */
  readonly replicas: Map<string, TestStage[]>;
}

/** Converts `hfDir` into `out` with `opts` and serves it as a pipeline. */
export async function pipelineOf(hfDir: string, out: string, opts: ConvertOptions, engineOpts: PipelineOptions = {}): Promise<TestPipeline> {
  await convert(hfDir, out, opts);
  return pipelineAt(out, engineOpts);
}

/**
 * Serves the converted model in `dir` as a pipeline of in-process stages; `replicas` > 1 gives every decoder
 * and vision stage that many instances in all (the coordinator spreads prefills and images over them).
 */
export async function pipelineAt(dir: string, engineOpts: PipelineOptions = {}, stageOpts: KernelStageOptions & { replicas?: number } = {}): Promise<TestPipeline> {
  const store = folderStore(dir);
  const manifest = await readManifest(store);
  const open = openFrom(store, manifest);
  const { replicas: count, ...kernelOpts } = stageOpts;
  const make = (s: (typeof manifest.stages)[number]) => new TestStage(() => new KernelStage(manifest, s, open, kernelOpts));
  const stages = new Map(manifest.stages.map((s) => [s.name, make(s)]));
  const extra = Math.max(0, (count ?? 1) - 1);
  const replicas = new Map(manifest.stages.filter((s) => s.kind !== "head").map((s) => [s.name, Array.from({ length: extra }, () => make(s))]));
  const spread = extra > 0 ? { replicas: (s: (typeof manifest.stages)[number]) => (replicas.get(s.name) ?? []).map((t) => t.rpc()) } : {};
  const engine = new PipelineEngine(manifest, (s) => stages.get(s.name)!.rpc(), { backoffMs: 1, ...spread, ...engineOpts });
  return { manifest, engine, stages, replicas };
}

/** The whole model in one kernel engine. */
export async function wholeAt(dir: string): Promise<Engine> {
  return loadModel(dir, { vision: "kernel", prefill: "kernel", decode: "kernel" });
}

/** Every token of one generation, with its result. */
export async function run(
  engine: Parameters<typeof generate>[0],
  soft: SoftTokens,
  ids: readonly number[],
  opts: GenerateOptions,
  each?: (t: GeneratedToken) => void,
): Promise<{ tokens: GeneratedToken[]; ids: readonly number[] }> {
  const it = generate(engine, soft, ids, opts);
  const tokens: GeneratedToken[] = [];
  for (;;) {
    const n = await it.next();
    if (n.done) {
      n.value.prefill.state.release?.();
      return { tokens, ids: n.value.ids };
    }
    tokens.push(n.value);
    each?.(n.value);
  }
}
