/**
 * onnxruntime-web inside workerd: the bench worker (bench/workerd/) under wrangler's local dev server on a
 * free loopback port (wrangler's `unstable_startWorker`). Graph, weights and inputs are served to it by a
 * small file server on another loopback port; the worker times the runs and returns per-run milliseconds
 * (protocol: ../workerd/protocol.ts).
 */
import { stageKind } from "../feeds.ts";
import { createReadStream, statSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { BenchGraph } from "../graphs.ts";
import type { CalibrateReply, LoadReply, LoadRequest, Reply, SampleReply } from "../workerd/protocol.ts";
import type { BenchRuntime, LoadedGraph } from "./types.ts";

const CONFIG = fileURLToPath(new URL("../workerd/wrangler.toml", import.meta.url));
const START_TIMEOUT_MS = 60_000; // bundling + workerd start take a few seconds; a failed build never becomes ready

/** Files the worker may fetch, by graph id. */
type Served = Map<string, { graph: string; weights: string; feeds: Buffer }>;

/** Starts the file server and the worker; `log` receives progress lines. */
export async function workerdRuntime(log: (line: string) => void): Promise<BenchRuntime> {
  const served: Served = new Map();
  const files = await listen(fileServer(served));
  const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  const t0 = performance.now();
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false"; // no internet needed (nor, here, available) for Request.cf
  process.env.WRANGLER_SEND_METRICS ??= "false";
  const { unstable_startWorker } = await import("wrangler");
  const worker = await unstable_startWorker({
    config: CONFIG,
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, logLevel: "error", watch: false, persist: false },
  });
  try {
    const url = await withTimeout(worker.ready.then(() => worker.url), START_TIMEOUT_MS, "wrangler's dev server");
    const ping = await fetch(new URL("/ping", url), { method: "POST", signal: AbortSignal.timeout(START_TIMEOUT_MS) });
    if (ping.status !== 404) throw new Error(`bench worker: unexpected HTTP ${ping.status} for an unknown route`);
    log(`workerd: bench worker ready at ${url.origin} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const call = <T>(path: string, body: object) => post<T>(new URL(path, url), body);
    return {
      name: "workerd",
      async load(graph: BenchGraph): Promise<LoadedGraph> {
        served.set(graph.id, { graph: graph.graphPath, weights: graph.weightsPath, feeds: concatFeeds(graph) });
        const id = graph.id;
        try {
          const feeds = graph.feeds.map((f) => ({ name: f.name, dims: [...f.dims] }));
          const req: LoadRequest = { id, source: `${base}/${id}`, weightsName: graph.weightsName, feeds, prepack: stageKind(graph.stage) !== "vision" /* onnxruntime decodes here: pre-pack as its runtime does */ };
          const { fetchMs, loadMs } = await call<LoadReply>("/load", req);
          log(`  workerd: fetched ${id} over loopback in ${(fetchMs / 1000).toFixed(1)} s`);
          return {
            loadMs,
            calibrate: async (warmup) => (await call<CalibrateReply>("/calibrate", { id, warmup })).batch,
            async sample(batch, count) {
              const t0 = performance.now();
              const { samples } = await call<SampleReply>("/sample", { id, batch, count });
              checkClock(samples, batch, performance.now() - t0, id);
              return samples;
            },
            async release() {
              served.delete(id);
              await call("/release", { id });
            },
          };
        } catch (err) {
          served.delete(id);
          throw err;
        }
      },
      async close() {
        await worker.dispose();
        files.close();
      },
    };
  } catch (err) {
    await worker.dispose();
    files.close();
    throw err;
  }
}

/** Deployed Workers freeze timers during computation; fail loudly if this workerd did too. */
function checkClock(samples: readonly number[], batch: number, wallMs: number, id: string): void {
  const total = samples.reduce((a, b) => a + b * batch, 0);
  if (samples.some((r) => !(r > 0)) || total > wallMs) {
    throw new Error(`${id}: workerd's in-isolate timings (${samples.join(", ")} ms × ${batch}) are not usable (request took ${wallMs.toFixed(0)} ms)`);
  }
}

/**
 * POSTs one request on a fresh loopback connection and unwraps its reply. (wrangler's dev server drops idle
 * keep-alive connections after a moment, and fetch() would then fail on a reused socket.)
 */
function post<T>(url: URL, body: object): Promise<T> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise<T>((resolve, reject) => {
    const req = request(url, { method: "POST", agent: false, headers: { "content-type": "application/json", "content-length": payload.byteLength } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        try {
          const reply = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Reply<T>;
          if (reply.ok) resolve(reply);
          else reject(new Error(`bench worker ${url.pathname}: ${reply.error}`));
        } catch {
          reject(new Error(`bench worker ${url.pathname}: HTTP ${res.statusCode}, not a JSON reply`));
        }
      });
    });
    req.on("error", (err) => reject(new Error(`POST ${url.pathname}: ${err.message}`)));
    req.end(payload);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not start within ${ms / 1000} s (see the build errors above)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function concatFeeds(graph: BenchGraph): Buffer {
  return Buffer.concat(graph.feeds.map((f) => Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength)));
}

/** GET /<id>/graph|weights|feeds for registered ids only; bound to 127.0.0.1. */
function fileServer(served: Served): Server {
  return createServer((req, res) => {
    const [, id, part] = (req.url ?? "").split("/");
    const entry = served.get(id ?? "");
    if (req.method !== "GET" || !entry || !["graph", "weights", "feeds"].includes(part ?? "")) {
      res.writeHead(404).end();
      return;
    }
    if (part === "feeds") {
      res.writeHead(200, { "content-length": entry.feeds.byteLength }).end(entry.feeds);
      return;
    }
    const path = part === "graph" ? entry.graph : entry.weights;
    res.writeHead(200, { "content-length": statSync(path).size });
    createReadStream(path, { highWaterMark: 4 << 20 }).pipe(res);
  });
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}
