/**
 * The VQ-VAE mask decoder against ../shared/golden-vqvae: the random-weight npz loaded exactly as the real
 * vae-oid.npz would be, each code set decoded, compared with the float64 reference output (masks.bin).
 * Tolerance: max |diff| ≤ 1e-5 absolute (outputs are O(1); the golden README's smallest porting bug moves the
 * output by 0.78), and the same sign wherever |golden| > 1e-3.
 */
import { describe, expect, it } from "vitest";
import { readNpz } from "../../shared/masks/npz.ts";
import { decodeMask } from "../../shared/masks/vae-decoder.ts";
import { packedTensors, vaeNpzKeys, vaeWeights, VAE_MASK_SIZE, type VaeWeights } from "../../shared/masks/vae-weights.ts";
import { loadVqvaeGolden, worstDiff } from "./support.ts";

const golden = loadVqvaeGolden();
const TOLERANCE = 1e-5;

async function goldenWeights(): Promise<VaeWeights> {
  const arrays = await readNpz(golden.npz, vaeNpzKeys(), "vae-random.npz");
  return vaeWeights((k) => arrays.get(k)!, "torch");
}

function expectMatches(got: Float32Array, caseIndex: number): void {
  const want = golden.masks.subarray(caseIndex * 4096, (caseIndex + 1) * 4096);
  const { max, index } = worstDiff(got, want);
  expect(max, `case ${caseIndex}: worst at y ${Math.floor(index / 64)}, x ${index % 64}`).toBeLessThanOrEqual(TOLERANCE);
  let flips = 0;
  for (let i = 0; i < want.length; i++) if (Math.abs(want[i]) > 1e-3 && Math.sign(want[i]) !== Math.sign(got[i])) flips++;
  expect(flips).toBe(0);
}

describe("VQ-VAE decoder: codes → float32[64, 64]", () => {
  it("reads the 25 decoder arrays of the npz with big_vision's shapes", async () => {
    const w = await goldenWeights();
    expect([w.codes, w.dim, w.conv0.cin, w.conv0.cout]).toEqual([128, 512, 512, 128]);
    expect(w.upsample.map((l) => [l.k, l.cin, l.cout])).toEqual([[4, 128, 128], [4, 128, 64], [4, 64, 32], [4, 32, 16]]);
    expect([w.conv1.cin, w.conv1.cout, VAE_MASK_SIZE]).toEqual([16, 1, 64]);
    expect(packedTensors(w).length).toBe(vaeNpzKeys().length);
  });

  it("reproduces masks.bin for all three code sets", async () => {
    const w = await goldenWeights();
    golden.cases.forEach((c, i) => {
      const mask = decodeMask(w, c.codes);
      expect(mask.length).toBe(64 * 64);
      expectMatches(mask, i);
    });
  });

  it("lays the codes out row-major: the L case is an L in the lower left, not its mirror", async () => {
    const w = await goldenWeights();
    const l = golden.cases.findIndex((c) => c.name === "L_shape_two_codes");
    const mask = decodeMask(w, golden.cases[l].codes);
    // Column 0 and row 3 of the 4×4 grid hold the mostly-positive code: mean over each 16×16 cell.
    const cell = (gy: number, gx: number) => {
      let s = 0;
      for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) s += mask[(gy * 16 + y) * 64 + gx * 16 + x];
      return s / 256;
    };
    expect(cell(0, 0)).toBeGreaterThan(cell(0, 3));
    expect(cell(3, 3)).toBeGreaterThan(cell(0, 3));
  });

  it("gives the same numbers from the packed layout the converter writes", async () => {
    const w = await goldenWeights();
    const packed = new Map(packedTensors(w).map((t) => [t.name, { dims: t.dims, data: t.data }]));
    const again = vaeWeights((k) => packed.get(k)!, "packed");
    expectMatches(decodeMask(again, golden.cases[1].codes), 1);
  });

  it("refuses a wrong number of codes and codes outside the codebook", async () => {
    const w = await goldenWeights();
    expect(() => decodeMask(w, [1, 2, 3])).toThrow(/16 codes, got 3/);
    expect(() => decodeMask(w, [...Array(15).fill(0), 128])).toThrow(/code 15 is 128, outside the codebook's 0\.\.127/);
  });

  it("names the key whose shape is wrong", async () => {
    const arrays = await readNpz(golden.npz, vaeNpzKeys(), "vae-random.npz");
    const bad = new Map(arrays);
    const w = arrays.get("decoder.2.net.0.weight")!;
    bad.set("decoder.2.net.0.weight", { dims: [128, 128, 1, 9], data: w.data });
    expect(() => vaeWeights((k) => bad.get(k)!, "torch")).toThrow(/decoder\.2\.net\.0\.weight has shape \[128, 128, 1, 9\], expected \[128, 128, 3, 3\]/);
    bad.set("decoder.2.net.0.weight", w);
    bad.set("decoder.6.bias", { dims: [32], data: new Float32Array(32) });
    expect(() => vaeWeights((k) => bad.get(k)!, "torch")).toThrow(/decoder\.6\.bias has shape \[32\], expected \[64\]/);
  });
});
