/**
 * Benchmark worker: runs graphs with onnxruntime-web through the project's own session wrapper
 * (shared/engine/ort.ts), fed by the compiled WASM module that wrangler's `CompiledWasm` rule bundles.
 * Protocol: ./protocol.ts. Loaded sessions live in this isolate between requests (a benchmark-only worker;
 * serving workers keep no such state).
 *
 * Local workerd advances `performance.now()` during computation, in whole milliseconds (deployed Workers do
 * not advance it at all), so runs are timed in the isolate, in batches where a run is short; the benchmark
 * checks the totals against its own wall clock.
 */
// A relative path: wrangler 4.86 fails to resolve the package specifier from this folder (ENOENT on
// bench/workerd/onnxruntime-web/…), while the file itself is the one the exports map names.
import ortWasm from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import { configureOrt, f32, GraphSession, type Feeds } from "../../shared/engine/ort.ts";
import { calibrate, sampleRuns } from "../timing.ts";
import * as p from "./protocol.ts";

const loaded = new Map<string, { session: GraphSession; feeds: Feeds }>();

const routes: Record<string, (body: never) => Promise<object>> = {
  "/load": load,
  "/calibrate": async (req: p.CalibrateRequest): Promise<p.CalibrateReply> => ({ batch: await calibrate(runner(req.id), req.warmup) }),
  "/sample": async (req: p.SampleRequest): Promise<p.SampleReply> => ({ samples: await sampleRuns(runner(req.id), req.batch, req.count) }),
  "/release": async (req: p.ReleaseRequest) => {
    await loaded.get(req.id)?.session.release();
    loaded.delete(req.id);
    return {};
  },
};

export default {
  async fetch(request: Request): Promise<Response> {
    const route = routes[new URL(request.url).pathname];
    if (!route || request.method !== "POST") return new Response("not found", { status: 404 });
    try {
      return Response.json({ ok: true, ...(await route((await request.json()) as never)) });
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      return Response.json({ ok: false, error } satisfies p.Reply<object>, { status: 500 });
    }
  },
};

async function load(req: p.LoadRequest): Promise<p.LoadReply> {
  if (!p.isLoopbackSource(req.source)) throw new Error(`refusing non-loopback source ${req.source}`);
  if (loaded.has(req.id)) throw new Error(`${req.id} is already loaded`);
  configureOrt({ kind: "module", module: ortWasm });
  const t0 = performance.now();
  const [graph, weights, feedBytes] = await Promise.all(["graph", "weights", "feeds"].map((f) => download(`${req.source}/${f}`)));
  const t1 = performance.now();
  const session = await GraphSession.create(graph, [{ path: req.weightsName, data: weights }], { prepack: req.prepack });
  loaded.set(req.id, { session, feeds: toFeeds(req.feeds, feedBytes) });
  return { fetchMs: t1 - t0, loadMs: performance.now() - t1 };
}

function runner(id: string): () => Promise<unknown> {
  const entry = loaded.get(id);
  if (!entry) throw new Error(`${id} is not loaded`);
  return () => entry.session.run(entry.feeds);
}

/** Slices the concatenated float32 feed data into tensors (copies, so each is 4-byte aligned). */
function toFeeds(specs: p.LoadRequest["feeds"], bytes: Uint8Array): Feeds {
  const feeds: Feeds = {};
  let offset = 0;
  for (const s of specs) {
    const n = s.dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(bytes.slice(offset, offset + 4 * n).buffer);
    if (data.length !== n) throw new Error(`feed ${s.name}: expected ${n} values, the feed data ends early`);
    feeds[s.name] = f32(data, s.dims);
    offset += 4 * n;
  }
  if (offset !== bytes.byteLength) throw new Error(`feed data has ${bytes.byteLength} bytes, the feeds need ${offset}`);
  return feeds;
}

/** GETs `url` into one buffer sized by Content-Length (BYOB reads: no re-growing for hundreds of MB). */
async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const length = Number(res.headers.get("content-length"));
  if (!Number.isSafeInteger(length)) throw new Error(`GET ${url}: no Content-Length`);
  let buffer = new ArrayBuffer(length);
  let offset = 0;
  const reader = res.body.getReader({ mode: "byob" });
  while (offset < length) {
    const { value, done } = await reader.read(new Uint8Array(buffer, offset, length - offset));
    if (done) break;
    buffer = value.buffer as ArrayBuffer; // BYOB reads transfer the buffer
    offset += value.byteLength;
  }
  if (offset !== length) throw new Error(`GET ${url}: got ${offset} of ${length} bytes`);
  return new Uint8Array(buffer);
}
