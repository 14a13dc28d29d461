/**
 * The mask commands through the CLI, as a user runs them: `vae-decode` reproduces the golden's raw decoder
 * output (../shared/golden-vqvae/masks.bin, within 1e-5), `convert-vae` adds the decoder to a copy of the
 * default model and the runtime's loader decodes the same numbers from it, `convert --vae` does both at once.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { folderStore } from "../../cli/node-runtime.ts";
import { loadMaskDecoder } from "../../shared/masks/loader.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import { loadGolden, readF32, REPO } from "../helpers/golden.ts";
import { loadVqvaeGolden, VQVAE_DIR, worstDiff } from "../masks/support.ts";

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), "pg-vae-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const cli = (...args: string[]) => run("npx", ["tsx", join(REPO, "cli/main.ts"), ...args], { cwd: REPO, maxBuffer: 16 << 20 });

const golden = loadVqvaeGolden();
const NPZ = join(VQVAE_DIR, "vae-random.npz");
const goldenMask = (i: number) => golden.masks.subarray(i * 4096, (i + 1) * 4096);

describe("npm run -s cli -- vae-decode", () => {
  for (const [i, c] of golden.cases.entries()) {
    it(`writes masks.bin's case ${i} (${c.name}) as raw float32[64, 64]`, async () => {
      const out = join(work, `mask-${i}.f32`);
      const { stderr } = await cli("vae-decode", NPZ, "--codes", c.codes.join(","), "--out", out);
      expect(stderr).toMatch(/wrote .*float32\[64, 64\]/);
      const mask = readF32(out);
      expect(mask.length).toBe(64 * 64);
      const { max, index } = worstDiff(mask, goldenMask(i));
      expect(max, `worst at ${index}`).toBeLessThanOrEqual(1e-5);
    });
  }

  it("fails with a clear message for bad codes or a file that is not an npz", async () => {
    await expect(cli("vae-decode", NPZ, "--codes", "1,2,3", "--out", join(work, "x.f32"))).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--codes must be 16 comma-separated/),
    });
    const codes = golden.cases[0].codes.join(",");
    await expect(cli("vae-decode", join(REPO, "package.json"), "--codes", codes, "--out", join(work, "x.f32"))).rejects.toMatchObject({
      stderr: expect.stringMatching(/package\.json: not a zip archive/),
    });
    const big = golden.cases[0].codes.map((v, k) => (k === 3 ? 200 : v)).join(",");
    await expect(cli("vae-decode", NPZ, "--codes", big, "--out", join(work, "x.f32"))).rejects.toMatchObject({
      stderr: expect.stringMatching(/code 3 is 200, outside the codebook's 0\.\.127/),
    });
  });
});

describe("convert-vae and convert --vae", () => {
  it("adds vae-decoder.bin and manifest.vae to a copy of the default model; the loader reproduces masks.bin", async () => {
    const dir = join(work, "shapes");
    cpSync(join(REPO, "model-shards/paligemma-shapes"), dir, { recursive: true });
    const before = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
    expect(before.vae).toBeUndefined(); // an older manifest without masks stays valid
    expect(await loadMaskDecoder(folderStore(dir), before)).toBeNull();

    const { stderr } = await cli("convert-vae", NPZ, dir);
    expect(stderr).toMatch(/wrote .*vae-decoder\.bin \(4\.7\d MB, codebook \[128, 512\]\)/);
    const after = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
    expect(after.vae).toMatchObject({ file: "vae-decoder.bin", layout: "hwio", codes: 128, dim: 512, maskSize: 64, source: { name: "vae-random.npz" } });
    expect(after.tensors["vae-decoder.bin"].map((t) => t.name).slice(0, 3)).toEqual(["_vq_vae._embedding", "decoder.0.weight", "decoder.0.bias"]);
    expect(after.tensors["vae-decoder.bin"].find((t) => t.name === "decoder.6.weight")!.dims).toEqual([4, 4, 128, 64]);
    expect(after.stages).toEqual(before.stages);

    const decoder = (await loadMaskDecoder(folderStore(dir), after))!;
    golden.cases.forEach((c, i) => expect(worstDiff(decoder.decode(c.codes), goldenMask(i)).max).toBeLessThanOrEqual(1e-5));

    await cli("convert-vae", NPZ, dir); // again: replaced, not added twice
    const again = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    expect(Object.keys(again.files).filter((f) => f.startsWith("vae"))).toEqual(["vae-decoder.bin"]);
  });

  it("convert --vae converts a checkpoint and adds the decoder in one step", async () => {
    const out = join(work, "pg2");
    await cli("convert", loadGolden("paligemma2-tiny").dir, out, "--vae", NPZ);
    const m = parseManifest(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")));
    expect(m.vae?.file).toBe("vae-decoder.bin");
    expect(m.stages.length).toBe(3);
  });

  it("refuses a folder that holds no converted model", async () => {
    await expect(cli("convert-vae", NPZ, work)).rejects.toMatchObject({ stderr: expect.stringMatching(/manifest\.json/) });
  });
});
