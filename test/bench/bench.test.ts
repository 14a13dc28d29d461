/**
 * Smoke test of `npm run bench` (the benchmark itself is not run in the suite): a tiny synthetic shape, one
 * warm-up and two rounds, node-web only, as a child process, checking the JSON contract that checks outside
 * the repository read from the last stdout line. node-native needs onnxruntime-node, which `npm ci` leaves out
 * (`npm run bench:setup` adds it), so the suite checks only that its absence is reported with that instruction.
 * Plus the one shortcut the benchmark takes: an `-acc4` graph derived from its base graph equals the one the
 * builder writes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ModelProto } from "../../converter/onnx/proto.ts";
import { buildBenchGraph, deriveVariant, parseDtype } from "../../bench/graphs.ts";
import { benchShape } from "../../bench/shapes.ts";
import { loadOnnxruntimeNode, OnnxruntimeNodeMissing } from "../../bench/runtimes/node-native.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const DTYPES = ["fp32", "fp16", "int8", "int8-acc4", "int4", "int4-acc4"];
const STAGES = ["decode_layer", "vision_layer", "head"];
const RUNTIMES = ["node-web"];

describe("npm run bench -- --quick --shape tiny --json", () => {
  it("prints a table, then the JSON contract as the last stdout line", async () => {
    const args = ["tsx", "bench/main.ts", "--quick", "--shape", "tiny", "--runtimes", RUNTIMES.join(","), "--dtypes", DTYPES.join(","), "--json"];
    const { stdout, stderr } = await run("npx", args, { cwd: REPO, maxBuffer: 16 << 20, timeout: 90_000 });
    expect(stderr).toMatch(/bandwidth [\d.]+ GB\/s/); // progress goes to stderr
    const lines = stdout.trimEnd().split("\n");
    expect(stdout).toMatch(/\| runtime +\| dtype +\| stage +\|/);

    const report = JSON.parse(lines[lines.length - 1]) as { bandwidth_gbps: unknown; results: Record<string, unknown>[] };
    expect(Object.keys(report).sort()).toEqual(["bandwidth_gbps", "results"]);
    expect(typeof report.bandwidth_gbps).toBe("number");
    expect(report.bandwidth_gbps).toBeGreaterThan(0);
    expect(report.results).toHaveLength(RUNTIMES.length * DTYPES.length * STAGES.length);
    for (const r of report.results) {
      expect(Object.keys(r).sort()).toEqual(["dtype", "gbps", "ms", "runtime", "stage"]);
      expect(RUNTIMES).toContain(r.runtime);
      expect(DTYPES).toContain(r.dtype);
      expect(STAGES).toContain(r.stage);
      for (const k of ["ms", "gbps"] as const) {
        expect(typeof r[k], `${r.runtime} ${r.dtype} ${r.stage} ${k}`).toBe("number");
        expect(Number.isFinite(r[k]) && (r[k] as number) > 0, `${r.runtime} ${r.dtype} ${r.stage} ${k} = ${r[k]}`).toBe(true);
      }
    }
    const combos = new Set(report.results.map((r) => `${r.runtime}/${r.dtype}/${r.stage}`));
    expect(combos.size).toBe(report.results.length); // every combination exactly once
  }, 120_000);
});

describe("node-native without onnxruntime-node", () => {
  it("fails with the command that installs it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "pg-no-ort-"));
    try {
      const from = pathToFileURL(join(empty, "probe.js")).href; // resolves packages from an empty folder
      const err = await loadOnnxruntimeNode(from).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OnnxruntimeNodeMissing);
      expect((err as Error).message).toMatch(/npm run bench:setup/);
      expect((err as Error).message).toMatch(/--runtimes workerd,node-web/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("accuracy_level variants", () => {
  const dir = mkdtempSync(join(tmpdir(), "pg-bench-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The decoded model with external-data locations (the weight file's name) blanked. */
  const normalised = (path: string) => {
    const json = JSON.stringify(ModelProto.toObject(ModelProto.decode(readFileSync(path)), { longs: String, bytes: String }));
    return json.replace(/"key":"location","value":"[^"]*"/g, '"key":"location","value":""');
  };

  it.each(STAGES)("%s: the int4-acc4 graph derived from int4 equals the builder's own", (stage) => {
    const shape = benchShape("tiny");
    const base = buildBenchGraph(shape, stage as "head", parseDtype("int4"), dir);
    const derived = deriveVariant(base, parseDtype("int4"), parseDtype("int4-acc4"), dir);
    const direct = buildBenchGraph(shape, stage as "head", parseDtype("int4-acc4"), dir);
    expect(normalised(derived.graphPath)).toBe(normalised(direct.graphPath));
    expect(readFileSync(base.weightsPath).equals(readFileSync(direct.weightsPath))).toBe(true);
    expect(normalised(base.graphPath)).not.toBe(normalised(direct.graphPath)); // the attribute did change
  });
});
