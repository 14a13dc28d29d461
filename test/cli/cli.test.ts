/**
 * The CLI contract that checks outside the repository rely on (`npm run -s cli -- …`), run as a user would:
 * a child process, files in and out, the last stdout line of `generate` as JSON.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { encode as encodePng } from "fast-png";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../../shared/image/index.ts";
import { loadGolden, maxAbs, maxAbsDiff, readF32, REPO, SHAPES_MODEL } from "../helpers/golden.ts";
import { losslessWebp } from "../helpers/webp-encode.ts";

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "pg-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run("npx", ["tsx", join(REPO, "cli/main.ts"), ...args], { cwd: REPO, maxBuffer: 64 << 20 });
}

describe("paligemma2-tiny through the CLI", () => {
  const g = loadGolden("paligemma2-tiny");
  const model = join(work, "pg2");
  let convertLog = "";
  beforeAll(async () => {
    convertLog = (await cli("convert", g.dir, model, "--dtype", "fp32")).stderr;
  });

  it("convert reports progress on stderr", () => {
    expect(convertLog).toMatch(/\[1\/3\] vision-0/);
    expect(convertLog).toMatch(/wrote .*manifest\.json/);
  });

  it("preprocess reproduces the processor's pixel values", async () => {
    await cli("preprocess", model, "--image", join(g.dir, "image.png"), "--out", join(work, "pv.f32"));
    const d = maxAbsDiff(readF32(join(work, "pv.f32")), g.pixelValues);
    expect(d.max, `worst at ${d.at}`).toBeLessThanOrEqual(1e-6);
  });

  it("preprocess takes a WebP and a GIF: the same pixel values as the PNG of the same pixels", async () => {
    const png = await decodeImage(new Uint8Array(readFileSync(join(g.dir, "image.png"))), { maxPixels: 1 << 20 });
    writeFileSync(join(work, "image.webp"), await losslessWebp(png));
    const fixture = JSON.parse(readFileSync(join(REPO, "test/fixtures/images/pillow-webp-gif.json"), "utf8"));
    const gif = fixture.gif.find((c: { name: string }) => c.name === "pillow-96x64-256-colours");
    writeFileSync(join(work, "image.gif"), Buffer.from(gif.gif, "base64"));
    writeFileSync(join(work, "gif-pixels.png"), encodePng({ width: 96, height: 64, channels: 3, depth: 8, data: Buffer.from(gif.rgb, "base64") }));
    for (const [image, reference] of [["image.webp", join(g.dir, "image.png")], ["image.gif", join(work, "gif-pixels.png")]]) {
      await cli("preprocess", model, "--image", join(work, image), "--out", join(work, `${image}.f32`));
      await cli("preprocess", model, "--image", reference, "--out", join(work, `${image}.ref.f32`));
      expect(readFileSync(join(work, `${image}.f32`)).equals(readFileSync(join(work, `${image}.ref.f32`))), image).toBe(true);
    }
    expect(maxAbsDiff(readF32(join(work, "image.webp.f32")), g.pixelValues).max).toBeLessThanOrEqual(1e-6);
  });

  it("forward writes full-sequence logits and image features", async () => {
    const logits = join(work, "logits.f32");
    const feats = join(work, "feats.f32");
    await cli("forward", model, "--input-ids", g.inputIds.join(","), "--pixel-values", join(g.dir, "pixel_values.bin"), "--logits-out", logits, "--image-features-out", feats);
    const l = readF32(logits);
    expect(l.length).toBe(g.inputIds.length * g.vocab);
    expect(maxAbsDiff(l, g.logits).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(g.logits)));
    expect(maxAbsDiff(readF32(feats), g.imageFeatures).max).toBeLessThanOrEqual(2e-5);
  });

  it("forward --vision kernel --prefill kernel gives the same logits and image features", async () => {
    const logits = join(work, "logits-kernel.f32");
    const feats = join(work, "feats-kernel.f32");
    await cli("forward", model, "--input-ids", g.inputIds.join(","), "--pixel-values", join(g.dir, "pixel_values.bin"), "--logits-out", logits, "--image-features-out", feats, "--vision", "kernel", "--prefill", "kernel");
    expect(maxAbsDiff(readF32(logits), g.logits).max).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(g.logits)));
    expect(maxAbsDiff(readF32(feats), g.imageFeatures).max).toBeLessThanOrEqual(2e-5);
  });

  for (const engine of ["ort", "kernel"]) {
    it(`generate --greedy --vision ${engine} --prefill ${engine} --decode ${engine} prints the greedy ids as the last stdout line`, async () => {
      const { stdout } = await cli("generate", model, "--input-ids", g.inputIds.join(","), "--image", join(g.dir, "image.png"), "--max-new-tokens", "12", "--greedy", "--vision", engine, "--prefill", engine, "--decode", engine);
      const last = JSON.parse(stdout.trim().split("\n").at(-1)!);
      expect(last).toEqual({ ids: g.greedyIds, text: "", finish_reason: "length" });
    });
  }

  it("bad arguments fail with a clear message and exit code 1", async () => {
    await expect(cli("generate", model, "--input-ids", "1,x", "--image", join(g.dir, "image.png"), "--max-new-tokens", "2")).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--input-ids must be a comma-separated list/),
    });
    await expect(cli("convert", g.dir, join(work, "bad"), "--dtype", "int3")).rejects.toMatchObject({ stderr: expect.stringMatching(/--dtype must be one of/) });
    await expect(cli("forward", model, "--input-ids", "1,2", "--prefill", "gpu")).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/--prefill/) });
    await expect(cli("forward", model, "--input-ids", "1,2", "--logits-out", join(work, "never.f32"), "--gemm", "int9")).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/--gemm must be int8, int8-a8, int16, int7 or float/) });
  });

  it("forward --gemm float|int16 on an int8 conversion: the integer GEMM within 5e-3 of the float one (gemm-parity.test.ts)", async () => {
    const int8 = join(work, "pg2-int8");
    await cli("convert", g.dir, int8, "--dtype", "int8");
    const out = (gemm: string) => join(work, `logits-int8-${gemm}.f32`);
    for (const gemm of ["float", "int16"]) {
      await cli("forward", int8, "--input-ids", g.inputIds.join(","), "--pixel-values", join(g.dir, "pixel_values.bin"), "--logits-out", out(gemm), "--vision", "kernel", "--prefill", "kernel", "--gemm", gemm);
    }
    const [f, q] = [readF32(out("float")), readF32(out("int16"))];
    const d = maxAbsDiff(q, f).max;
    expect(d).toBeGreaterThan(0); // the option really switched the GEMM
    expect(d).toBeLessThanOrEqual(5e-3);
  });
});

it("generate on the shapes model answers as the reference implementation, eos included", async () => {
  const { stdout, stderr } = await cli("generate", join(REPO, "model-shards/paligemma-shapes"), "--prompt", "caption en", "--image", join(SHAPES_MODEL, "eval/img_005_160x120.png"), "--max-new-tokens", "24");
  const last = JSON.parse(stdout.trim().split("\n").at(-1)!);
  expect(last).toEqual({ ids: [326, 390, 364, 273, 375, 393, 364, 389, 375, 390, 364, 1], text: "a red triangle, a green triangle and a red triangle", finish_reason: "eos" });
  expect(stderr).toContain("a red triangle, a green triangle and a red triangle");
});
