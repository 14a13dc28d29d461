/**
 * The wrangler configs agree where they must. Both deployed workers (decoder = wrangler.toml, vision =
 * functions/vision/wrangler.toml) share one KV namespace, one model and one image limit; every config that
 * starts a workerd (those two, the Durable Object tests', the benchmark's and the kernel's) uses one
 * compatibility date and the same flags, so what the tests run is what deploys. The CPU limit covers the
 * decoder's request timeout. Parsed as TOML (smol-toml), so a value moved between sections or written twice is
 * seen as wrangler sees it.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/golden.ts";

/** The parts of a wrangler config read here (wrangler's own names). */
interface WranglerConfig {
  name: string;
  compatibility_date?: string;
  compatibility_flags?: string[];
  workers_dev?: boolean;
  limits?: { cpu_ms?: number };
  observability?: { enabled?: boolean };
  assets?: { directory: string; binding: string; run_worker_first?: boolean };
  vars?: Record<string, string>;
  kv_namespaces?: { binding: string; id: string }[];
  r2_buckets?: { binding: string; bucket_name: string }[];
  services?: { binding: string; service: string }[];
  durable_objects?: { bindings: { name: string; class_name: string }[] };
  migrations?: { tag: string; new_sqlite_classes?: string[] }[];
  rules?: { type: string; globs: string[] }[];
}

const CONFIGS = {
  decoder: "wrangler.toml",
  vision: "functions/vision/wrangler.toml",
  sessionTests: "test/workers/wrangler.toml",
  bench: "bench/workerd/wrangler.toml",
  kernelBench: "kernels/bench-worker/wrangler.toml",
} as const;

const read = (path: string) => parse(readFileSync(join(REPO, path), "utf8")) as unknown as WranglerConfig;
const cfg = Object.fromEntries(Object.entries(CONFIGS).map(([k, p]) => [k, read(p)])) as Record<keyof typeof CONFIGS, WranglerConfig>;
const { decoder, vision, sessionTests } = cfg;

/** Workers' ceiling for `limits.cpu_ms` (5 minutes, paid plan) and the default without it (30 s). */
const MAX_CPU_MS = 300_000;
const DEFAULT_CPU_MS = 30_000;

describe("wrangler configs", () => {
  it("every config has the same compatibility date and flags, and the date is a real day", () => {
    const dates = Object.values(cfg).map((c) => c.compatibility_date);
    expect(new Set(dates).size, `dates: ${dates.join(", ")}`).toBe(1);
    const date = dates[0]!;
    expect(date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10)).toBe(date);
    const flags = Object.values(cfg).map((c) => JSON.stringify([...(c.compatibility_flags ?? [])].sort()));
    expect(new Set(flags).size, `flags: ${flags.join(" | ")}`).toBe(1);
  });

  it("the compatibility date is one the pinned workerd supports (workerd 1.YYYYMMDD.n supports dates up to YYYY-MM-DD)", () => {
    const version = (JSON.parse(readFileSync(join(REPO, "node_modules/workerd/package.json"), "utf8")) as { version: string }).version;
    const m = /^1\.(\d{4})(\d{2})(\d{2})\./.exec(version);
    expect(m, `workerd ${version}`).not.toBeNull();
    expect(decoder.compatibility_date! <= `${m![1]}-${m![2]}-${m![3]}`).toBe(true);
  });

  it("both deployed workers share the KV namespace, the model and the image byte limit", () => {
    const kv = (c: WranglerConfig) => c.kv_namespaces?.find((n) => n.binding === "SOFT_TOKENS")?.id;
    expect(kv(decoder)).toBeTruthy();
    expect(kv(vision)).toBe(kv(decoder));
    for (const name of ["MODEL_ID", "MODEL_SOURCE", "MAX_IMAGE_BYTES"]) {
      expect(decoder.vars?.[name], `decoder ${name}`).toBeTruthy();
      expect(vision.vars?.[name], `vision ${name}`).toBe(decoder.vars?.[name]);
    }
    // The Durable Object tests run the same model from the same store.
    for (const name of ["MODEL_ID", "MODEL_SOURCE"]) expect(sessionTests.vars?.[name], `session tests ${name}`).toBe(decoder.vars?.[name]);
  });

  it("model files come from the same place for every worker that loads the model", () => {
    for (const [key, c] of [["decoder", decoder], ["vision", vision], ["sessionTests", sessionTests]] as const) {
      expect(c.assets?.binding, key).toBe("MODEL_ASSETS");
      expect(c.assets?.run_worker_first, `${key}: model files are never served publicly`).toBe(true);
      expect(resolve(REPO, dirname(CONFIGS[key]), c.assets!.directory), key).toBe(join(REPO, "model-shards"));
    }
    // With MODEL_SOURCE = "r2" both deployed workers need the same bucket.
    if (decoder.vars?.MODEL_SOURCE === "r2") {
      const bucket = (c: WranglerConfig) => c.r2_buckets?.find((b) => b.binding === "MODEL_BUCKET")?.bucket_name;
      expect(bucket(decoder)).toBeTruthy();
      expect(bucket(vision)).toBe(bucket(decoder));
    }
  });

  it("the CPU limit of both deployed workers covers the decoder's REQUEST_TIMEOUT_S", () => {
    const timeoutMs = 1000 * Number(decoder.vars?.REQUEST_TIMEOUT_S);
    expect(timeoutMs).toBeGreaterThan(DEFAULT_CPU_MS); // the reason cpu_ms must be set at all
    for (const [key, c] of [["decoder", decoder], ["vision", vision]] as const) {
      expect(c.limits?.cpu_ms, key).toBeGreaterThanOrEqual(timeoutMs);
      expect(c.limits?.cpu_ms, key).toBeLessThanOrEqual(MAX_CPU_MS);
    }
  });

  it("both deployed workers have observability on; the vision worker has no public URL", () => {
    expect(decoder.observability?.enabled).toBe(true);
    expect(vision.observability?.enabled).toBe(true);
    expect(vision.workers_dev).toBe(false);
  });

  it("the decoder's service binding names the vision worker, and every Durable Object class has a migration", () => {
    expect(decoder.services?.find((s) => s.binding === "VISION")?.service).toBe(vision.name);
    for (const [key, c] of [["decoder", decoder], ["sessionTests", sessionTests]] as const) {
      const migrated = new Set((c.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
      for (const b of c.durable_objects?.bindings ?? []) expect(migrated.has(b.class_name), `${key}: ${b.class_name}`).toBe(true);
    }
  });

  it("every config imports .wasm as a compiled module (workerd cannot compile WebAssembly at run time)", () => {
    for (const [key, c] of Object.entries(cfg)) {
      expect(c.rules?.some((r) => r.type === "CompiledWasm" && r.globs.includes("**/*.wasm")), key).toBe(true);
    }
  });
});
