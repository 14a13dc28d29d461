/**
 * The accuracy check through the HTTP API: `scripts/eval.ts` (what `npm run eval` runs) on the 24 shapes eval
 * images (247 prompts) against the dev server. The scores must match the reference model's own, recorded with
 * the eval set (cases.json `metrics`, the same numbers as the shapes README's Accuracy table), within a small
 * margin; detection recall must be at least the reference's.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EvalReport } from "../../scripts/eval/run.ts";
import { REPO } from "../helpers/golden.ts";
import { loadShapesEval, SHAPES_EVAL_DIR } from "./shapes-eval.ts";
import { startServer, type ServerUnderTest } from "./support.ts";

/** Largest allowed difference from a reference exact-match rate or mean IoU (about one caption in 24). */
const MARGIN = 0.05;

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tsx scripts/eval.ts …` as `npm run eval -- …` would. */
function runCli(args: string[]): Promise<CliRun> {
  const tsx = join(REPO, "node_modules/tsx/dist/cli.mjs");
  const child = spawn(process.execPath, [tsx, "scripts/eval.ts", ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

let server: ServerUnderTest;
let run: CliRun;
let report: EvalReport & { missed: string[] };
let reference: Record<string, Record<string, number>>;

beforeAll(async () => {
  reference = (await loadShapesEval()).set.metrics as Record<string, Record<string, number>>;
  server = await startServer();
  const minRecall = String(reference.detect.recall_iou50 - 5e-5); // the recorded value is rounded to 4 decimals
  run = await runCli([SHAPES_EVAL_DIR, "--base-url", server.url, "--json", "--quiet", "--min-recall", minRecall]);
  const last = run.stdout.trim().split("\n").at(-1) ?? "";
  try {
    report = JSON.parse(last);
  } catch {
    throw new Error(`eval printed no JSON line (exit ${run.code}):\n${run.stdout}\n${run.stderr}\nserver:\n${server.log().slice(-3000)}`);
  }
}, 600_000);

afterAll(async () => {
  await server?.stop();
});

describe("npm run eval on the shapes eval set through the API", () => {
  it("answers all 247 prompts without errors and exits 0 (recall threshold met)", () => {
    expect(report.errors, run.stdout).toEqual([]);
    expect([report.cases, report.images, report.finish_reasons]).toEqual([247, 24, { eos: 247 }]);
    expect(report.missed).toEqual([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
  });

  it("scores the reference model's caption / count / colour exact match within the margin", () => {
    for (const kind of ["caption", "count", "color", "detect"]) {
      expect(report.metrics[kind].cases, kind).toBe(reference[kind].cases);
      expect(Math.abs(report.metrics[kind].exact_match - reference[kind].exact_match), kind).toBeLessThanOrEqual(MARGIN);
    }
  });

  it("finds at least the reference model's share of objects (recall at IoU >= 0.5), with mean IoU within the margin", () => {
    const d = report.metrics.detect as unknown as Record<string, number>;
    expect(d.gt_objects).toBe(81);
    expect(d.recall_iou50).toBeGreaterThanOrEqual(reference.detect.recall_iou50 - 5e-5);
    expect(Math.abs(d.mean_iou - reference.detect.mean_iou)).toBeLessThanOrEqual(MARGIN);
    expect(d.empty_cases_correct).toBeGreaterThanOrEqual(reference.detect.empty_cases_correct - 2);
  });

  it("gives the reference implementation's exact answer to every prompt (greedy, fp32 = its bf16 weights)", () => {
    expect(report.agreement.total).toBe(247);
    expect(report.agreement.same, JSON.stringify(report.disagreements.slice(0, 5))).toBe(247);
  });

  it("scores detection from the server's own `detections` field", () => {
    expect(report.server_detections).toEqual({ used: 96, total: 96 });
  });
});

describe("npm run eval's failure modes", () => {
  it("exits 1 with THRESHOLD MISSED when a --min-* threshold is not met", async () => {
    // A small set (the detect cases of two images, images by absolute path) with --max-tokens 1, which cuts every
    // box answer short: recall drops to 0.
    const { set } = await loadShapesEval();
    const names = ["img_014_200x200.png", "img_020_96x96.png"];
    const small = {
      images: set.images.filter((i) => names.includes(i.image)).map((i) => ({ ...i, image: join(SHAPES_EVAL_DIR, i.image) })),
      cases: set.cases.filter((c) => names.includes(c.image) && c.kind === "detect").map((c) => ({ ...c, image: join(SHAPES_EVAL_DIR, c.image) })),
    };
    const file = join(mkdtempSync(join(tmpdir(), "paligemma-eval-")), "cases.json");
    writeFileSync(file, JSON.stringify(small));
    const res = await runCli([file, "--base-url", server.url, "--quiet", "--max-tokens", "1", "--min-recall", "10%", "--min-caption", "0.5"]);
    expect(res.stdout).toMatch(/^eval: 8 cases on 2 images/);
    expect(res.stdout).toMatch(/THRESHOLD MISSED: recall 0\.0000 < 0\.1/);
    expect(res.stdout).toMatch(/THRESHOLD MISSED: caption: not measured/);
    expect(res.code).toBe(1);
  }, 120_000);

  it("exits 2 when the server cannot be reached", async () => {
    const res = await runCli([SHAPES_EVAL_DIR, "--base-url", "http://127.0.0.1:9", "--quiet"]);
    expect(res.stdout).toMatch(/ERRORS: 24 request\(s\) failed/);
    expect(res.code).toBe(2);
  }, 60_000);

  it("exits 2 with a message for a missing cases file", async () => {
    const res = await runCli(["/nonexistent/cases.json"]);
    expect(res.stderr).toMatch(/cannot read eval set \/nonexistent\/cases\.json/);
    expect(res.code).toBe(2);
  }, 60_000);
});
