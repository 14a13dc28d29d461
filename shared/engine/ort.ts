/**
 * The only module that imports onnxruntime-web.
 *
 * Node (CLI, tests, benchmarks) hands it the `.wasm` bytes; workerd hands it the module that wrangler's
 * `CompiledWasm` rule already compiled, because Workers refuse to compile WebAssembly from bytes at run time
 * (see ../shared/docs/workerd-onnxruntime.md). Either way onnxruntime runs single-threaded on the CPU (WASM) EP.
 */
import * as ort from "onnxruntime-web/wasm";

export type Tensor = ort.Tensor;
export type Feeds = Record<string, ort.Tensor>;

/** How this isolate provides onnxruntime's WASM binary. */
export type WasmSource = { kind: "bytes"; bytes: Uint8Array } | { kind: "module"; module: WebAssembly.Module };

let configured: WasmSource | null = null;

/**
 * Points onnxruntime at its WASM binary. Call once per isolate before the first session; later calls with
 * the same source are no-ops. With a compiled module, `WebAssembly.instantiate(bytes)` calls are routed to
 * that module (and only those: a call that passes a real `WebAssembly.Module` is left alone).
 */
export function configureOrt(source: WasmSource): void {
  if (configured) return;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  if (source.kind === "bytes") {
    ort.env.wasm.wasmBinary = source.bytes;
  } else {
    routeInstantiate(source.module);
    // Any non-empty binary makes onnxruntime take its "binary override" path instead of fetching a URL.
    ort.env.wasm.wasmBinary = new Uint8Array([0, 97, 115, 109]);
  }
  ort.env.logLevel = "error";
  configured = source;
}

function routeInstantiate(module: WebAssembly.Module): void {
  const original = WebAssembly.instantiate.bind(WebAssembly);
  const routed = ((source: unknown, imports?: WebAssembly.Imports) => {
    if (source instanceof WebAssembly.Module) return original(source, imports);
    return original(module, imports).then((instance) => ({ instance, module }));
  }) as typeof WebAssembly.instantiate;
  WebAssembly.instantiate = routed;
}

/** How a session is created. */
export interface SessionCreateOptions {
  /**
   * Let onnxruntime repack MatMul weights into its GEMM layout at load (default false). Measured here
   * (bench/RESULTS.md): single-token decoder layers ~1.3× faster, no gain for the batched vision tower and
   * prefill, ~37 % more WASM memory for the weights and ~30 % slower creation. The runtime asks for it only
   * where onnxruntime runs decode steps (see `prepackFor` in runtime.ts).
   */
  readonly prepack?: boolean;
}

/** Options every session gets: single thread, all graph optimisations, pre-packing only when asked. */
function sessionOptions(externalData: { path: string; data: Uint8Array }[], opts: SessionCreateOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    extra: opts.prepack ? {} : { session: { disable_prepacking: "1" } },
    externalData,
  };
}

/** A loaded graph: named float/int inputs in, named outputs back. */
export class GraphSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(graph: Uint8Array, externalData: { path: string; data: Uint8Array }[], opts: SessionCreateOptions = {}): Promise<GraphSession> {
    if (!configured) throw new Error("configureOrt() must be called before the first session is created");
    return new GraphSession(await ort.InferenceSession.create(graph, sessionOptions(externalData, opts)));
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Feeds): Promise<Record<string, ort.Tensor>> {
    return this.session.run(feeds);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export function f32(data: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor("float32", data, dims);
}

export function i64(data: BigInt64Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor("int64", data, dims);
}

/** Returns a tensor's float32 data, failing loudly on any other dtype. */
export function floatData(t: ort.Tensor): Float32Array {
  if (t.type !== "float32") throw new Error(`expected a float32 tensor, got ${t.type}`);
  return t.data as Float32Array;
}
