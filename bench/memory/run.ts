/**
 * `npm run -s bench -- --memory [--json]`: what each stage of PaliGemma-3B really holds. The model (synthetic
 * weights, real shapes: 27 SigLIP layers, 18 Gemma-2B layers, the whole 257,216-row tied head) is planned at a
 * stage budget (100 MB) for int8 and int4 by the converter's planner; the largest vision stage, decoder stage with
 * attention, MLP-only part (when the plan cuts layers) and head stage of each plan are written to disk and each is
 * loaded **alone in its own workerd process** (kernels/bench-worker under wrangler's dev server), streamed from a
 * loopback file server, and worked: a 270-row prefill and decode steps for 4 sessions whose caches hold 1,024
 * positions. Per stage: weight bytes, the kernel instance's memory, the worker's JS heap (inspector), and the
 * process's peak RSS (VmHWM) minus its resident set just before, when it ran with no model loaded: the same
 * process as its own baseline, so workerd's start-up differences between processes do not enter the number.
 */
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planByMemory } from "../../converter/plan-memory.ts";
import type { StageMemoryReply, StageMemoryRequest } from "../../kernels/bench-worker/stage-memory.ts";
import { estimateStage, type StageBudget, type StageEstimate } from "../../shared/model/stage-memory.ts";
import { benchShape } from "../shapes.ts";
import { jsHeapUsed } from "./inspector.ts";
import { writeSyntheticModel } from "./synthetic.ts";

const CONFIG = fileURLToPath(new URL("../../kernels/bench-worker/wrangler.toml", import.meta.url));

export interface MemoryBenchOptions {
  readonly budgetMb: number;
  readonly dtypes: readonly ("int8" | "int4")[];
  readonly budget: StageBudget;
  /** Prefill rows each session runs, and decode steps after them. */
  readonly rows: number;
  readonly steps: number;
  readonly workDir?: string;
  readonly log: (line: string) => void;
}

/** One measured stage (the JSON contract's fields, then the estimate for comparison). */
export interface MeasuredStage {
  readonly name: string;
  readonly kind: "vision" | "decoder" | "head";
  readonly from: number;
  readonly to: number;
  readonly weight_bytes: number;
  readonly kernel_bytes: number;
  readonly js_heap_bytes: number;
  readonly peak_rss_delta_bytes: number;
  readonly mlp?: { readonly from: number; readonly to: number };
  readonly attention?: boolean;
  readonly estimate: StageEstimate;
  readonly load_ms: number;
  readonly work_ms: number;
}

export interface MemoryPlanReport {
  readonly dtype: "int8" | "int4";
  readonly stages: number;
  readonly weight_bytes: number;
  readonly measured: readonly MeasuredStage[];
}

export interface MemoryReport {
  readonly budget_mb: number;
  readonly plans: readonly MemoryPlanReport[];
  /** A worker that loads no model: resident when ready, its peak, its JS heap. */
  readonly baseline: { readonly rss_bytes: number; readonly peak_rss_bytes: number; readonly js_heap_bytes: number };
}

/** Process ids of every descendant of `pid`. */
function descendants(pid: number): number[] {
  const ppid = (p: number) => {
    try {
      return Number(readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ")[1]);
    } catch {
      return -1;
    }
  };
  const all = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of all) if (ppid(c) === p) (out.push(c), queue.push(c));
  }
  return out;
}

/** The user worker's workerd process under this one: the one with the largest resident set (the other is wrangler's proxy). */
function workerProcess(): number {
  let best = { pid: 0, rss: 0 };
  for (const pid of descendants(process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
      const rss = statusKb(pid, "VmRSS");
      if (rss > best.rss) best = { pid, rss };
    } catch {
      // gone
    }
  }
  if (!best.pid) throw new Error("no workerd process found under this one");
  return best.pid;
}

/** A /proc/<pid>/status field in bytes (VmRSS: resident now; VmHWM: the peak so far). */
function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  return 1024 * Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

export function fileServer(root: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = join(root, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!path.startsWith(root)) return void res.writeHead(403).end();
    try {
      res.writeHead(200, { "content-length": statSync(path).size });
      createReadStream(path).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs `work` against a fresh worker (its own workerd process): its result, the process's resident set before
 * (the worker started and answering, no model) and its peak after, and the JS heap after.
 */
export async function inFreshWorker<T>(work: (url: URL) => Promise<T>): Promise<{ result: T; rssBefore: number; peakRss: number; jsHeap: number }> {
  const { worker, inspectorPort } = await startFresh();
  try {
    const url = await worker.url;
    await (await fetch(new URL("/ping", url))).json(); // the kernel module instantiated
    const pid = workerProcess();
    const rssBefore = statusKb(pid, "VmRSS");
    const result = await work(url);
    const jsHeap = await jsHeapUsed(new URL(`http://127.0.0.1:${inspectorPort}/`));
    return { result, rssBefore, peakRss: statusKb(pid, "VmHWM"), jsHeap };
  } finally {
    await worker.dispose();
  }
}

/** Seconds a fresh worker may take to be ready before its start is given up and tried again. */
const READY_S = 90;

/**
 * A started worker. The inspector's port is picked free, then bound by workerd a moment later; when something
 * took it in between, workerd dies on "Address already in use" and `ready` never settles, so a start that is not
 * ready in {@link READY_S} (or whose start failed) is disposed of and tried again with a new port, up to 3 times.
 */
async function startFresh() {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  process.env.WRANGLER_SEND_METRICS ??= "false";
  const { unstable_startWorker } = await import("wrangler");
  for (let attempt = 1; ; attempt++) {
    const inspectorPort = await freePort();
    const worker = await unstable_startWorker({
      config: CONFIG,
      dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: { port: inspectorPort }, logLevel: "error", watch: false, persist: false } as never,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), READY_S * 1000)));
    const ready = await Promise.race([worker.ready.then(() => "ready" as const, () => "failed" as const), late]).finally(() => clearTimeout(timer));
    if (ready === "ready") return { worker, inspectorPort };
    await worker.dispose().catch(() => undefined);
    if (attempt === 3) throw new Error(`a fresh worker was not ready in ${READY_S} s, 3 times`);
  }
}

export async function post<T>(url: URL, body: unknown): Promise<T> {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok || json.error) throw new Error(`${url.pathname}: ${json.error ?? res.status}`);
  return json;
}

/** Plans, writes, loads and measures; see the module comment. */
export async function memoryBench(o: MemoryBenchOptions): Promise<MemoryReport> {
  const config = benchShape("paligemma-3b", 1, 1).config;
  const work = o.workDir ?? mkdtempSync(join(tmpdir(), "pg-memory-"));
  const files = await fileServer(work);
  const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  try {
    o.log("memory: baseline worker (kernel module instantiated, no model)");
    const baseline = await inFreshWorker((url) => fetch(new URL("/ping", url)).then((r) => r.json()));
    o.log(`  resident ${(baseline.rssBefore / 1e6).toFixed(1)} MB, peak ${(baseline.peakRss / 1e6).toFixed(1)} MB, JS heap ${(baseline.jsHeap / 1e6).toFixed(1)} MB`);
    const plans: MemoryPlanReport[] = [];
    for (const dtype of o.dtypes) {
      const weights = { dtype, blockSize: 32 } as const;
      const budget = { ...o.budget, maxStageBytes: Math.floor(o.budgetMb * 1e6) };
      const planned = planByMemory(config, weights, { maxStageBytes: budget.maxStageBytes, budget: o.budget });
      const counters = { vision: 0, decoder: 0, head: 0 };
      const partsSeen = new Map<number, number>();
      const stages = planned.map((s) => {
        const part = s.mlp !== undefined || s.attention === false;
        const p = partsSeen.get(s.from) ?? 0;
        if (part) partsSeen.set(s.from, p + 1);
        const name = part ? `decoder-l${s.from}.${p}` : `${s.kind}-${counters[s.kind]++}`;
        return { ...s, name, estimate: estimateStage(config, weights, s, o.budget) };
      });
      const largest = (pick: (s: (typeof stages)[number]) => boolean) => stages.filter(pick).sort((a, b) => b.estimate.residentBytes - a.estimate.residentBytes)[0];
      const chosen = [
        largest((s) => s.kind === "vision"),
        largest((s) => s.kind === "decoder" && s.attention !== false),
        largest((s) => s.kind === "decoder" && s.attention === false),
        largest((s) => s.kind === "head"),
      ].filter((s): s is (typeof stages)[number] => s !== undefined);
      o.log(`memory: ${dtype} plan: ${stages.length} stages at ${o.budgetMb} MB; measuring ${chosen.map((s) => s.name).join(", ")}`);
      const dir = join(work, dtype);
      await writeSyntheticModel(dir, config, weights, stages, budget, new Set(chosen.map((s) => s.name)), o.log);
      const measured: MeasuredStage[] = [];
      for (const s of chosen) {
        const req: StageMemoryRequest = { modelUrl: `${base}/${dtype}/`, stage: s.name, sessions: o.budget.sessions, context: o.budget.context, rows: o.rows, steps: o.steps };
        const run = await inFreshWorker((url) => post<StageMemoryReply>(new URL("/stage", url), req));
        const row: MeasuredStage = {
          name: s.name,
          kind: s.kind,
          from: s.from,
          to: s.to,
          weight_bytes: run.result.weightBytes,
          kernel_bytes: run.result.kernelBytes,
          js_heap_bytes: run.jsHeap,
          peak_rss_delta_bytes: run.peakRss - run.rssBefore,
          ...(s.mlp ? { mlp: s.mlp } : {}),
          ...(s.attention === false ? { attention: false } : {}),
          estimate: s.estimate,
          load_ms: Math.round(run.result.loadMs),
          work_ms: Math.round(run.result.workMs),
        };
        o.log(`  ${s.name}: weights ${(row.weight_bytes / 1e6).toFixed(1)} MB, kernel ${(row.kernel_bytes / 1e6).toFixed(1)} MB, JS heap ${(row.js_heap_bytes / 1e6).toFixed(1)} MB, peak RSS +${(row.peak_rss_delta_bytes / 1e6).toFixed(1)} MB (estimate ${(s.estimate.residentBytes / 1e6).toFixed(1)} MB); load ${row.load_ms} ms, work ${row.work_ms} ms`);
        measured.push(row);
      }
      plans.push({ dtype, stages: stages.length, weight_bytes: stages.reduce((a, s) => a + s.estimate.weightBytes, 0), measured });
      rmSync(dir, { recursive: true, force: true });
    }
    return { budget_mb: o.budgetMb, plans, baseline: { rss_bytes: baseline.rssBefore, peak_rss_bytes: baseline.peakRss, js_heap_bytes: baseline.jsHeap } };
  } finally {
    files.close();
    if (!o.workDir) rmSync(work, { recursive: true, force: true });
  }
}
