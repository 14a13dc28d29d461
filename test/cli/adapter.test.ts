/**
 * The adapter commands of the CLI contract, run as a user would: `convert-adapter <peft_dir>
 * <model_dir>/adapters/<name>`, then `forward` and `generate` with `--adapter` give what the adapter's merged
 * checkpoint, converted on its own, gives (logits within 1e-4 × max(1, max|logit|), the same greedy ids).
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadGolden, maxAbs, maxAbsDiff, readF32, REPO, SHARED, SHAPES_MODEL } from "../helpers/golden.ts";

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "pg-cli-lora-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const cli = (...args: string[]) => run("npx", ["tsx", join(REPO, "cli/main.ts"), ...args], { cwd: REPO, maxBuffer: 64 << 20 });

const GOLDEN = join(SHARED, "golden-lora/shapes-lora-a");
const g = loadGolden("paligemma-shapes");
const base = join(work, "paligemma-shapes");
const adapter = join(base, "adapters/shapes-lora-a");
const merged = join(work, "merged");
let convertLog = "";
beforeAll(async () => {
  cpSync(join(REPO, "model-shards/paligemma-shapes"), base, { recursive: true, filter: (p) => !p.includes("/adapters") });
  convertLog = (await cli("convert-adapter", GOLDEN, adapter)).stderr;
  await cli("convert", join(GOLDEN, "merged"), merged, "--dtype", "fp32");
}, 120_000);

it("convert-adapter reports what it wrote", () => {
  expect(convertLog).toContain("read 40 adapted modules (12 in the vision tower and projector)");
  expect(convertLog).toMatch(/wrote .*adapters\/shapes-lora-a\/adapter\.json \(0\.54 MB of factors\)/);
});

it("forward --adapter gives the merged model's logits", async () => {
  const args = ["--input-ids", g.inputIds.join(","), "--pixel-values", join(g.dir, "pixel_values.bin")];
  await cli("forward", base, ...args, "--logits-out", join(work, "a.f32"), "--adapter", adapter);
  await cli("forward", merged, ...args, "--logits-out", join(work, "m.f32"));
  const want = readF32(join(work, "m.f32"));
  const d = maxAbsDiff(readF32(join(work, "a.f32")), want);
  expect(d.max, `worst at ${d.at}`).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want)));
});

it("generate --adapter answers as the merged model", async () => {
  const args = ["--prompt", "detect circle", "--image", join(SHAPES_MODEL, "eval/img_001_160x120.png"), "--max-new-tokens", "24", "--greedy"];
  const last = (out: { stdout: string }) => JSON.parse(out.stdout.trim().split("\n").at(-1)!);
  const want = last(await cli("generate", merged, ...args));
  expect(last(await cli("generate", base, ...args, "--adapter", adapter))).toEqual(want);
  expect(last(await cli("generate", base, ...args)).ids, "the adapter changes this answer").not.toEqual(want.ids);
});

it("a missing adapter folder or an onnxruntime phase is refused with exit code 1", async () => {
  await expect(cli("forward", base, "--input-ids", "1,2", "--pixel-values", join(g.dir, "pixel_values.bin"), "--logits-out", join(work, "x.f32"), "--adapter", join(base, "adapters/nope"))).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/adapter nope: no adapter\.json in its folder/) });
  await expect(cli("forward", base, "--input-ids", g.inputIds.join(","), "--pixel-values", join(g.dir, "pixel_values.bin"), "--logits-out", join(work, "x.f32"), "--adapter", adapter, "--prefill", "ort")).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/LoRA adapters run in the kernel engine only, and prefill is set to ort/) });
});
