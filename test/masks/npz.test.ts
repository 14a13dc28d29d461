/**
 * The npz reader: numpy's savez_compressed file of the golden (deflated members, zip64 local headers), the
 * same arrays rewritten stored and with .npy versions 2 and 3, and the errors a wrong file must give.
 */
import { describe, expect, it } from "vitest";
import { parseNpy } from "../../shared/masks/npy.ts";
import { readNpz } from "../../shared/masks/npz.ts";
import { decodeMask } from "../../shared/masks/vae-decoder.ts";
import { vaeNpzKeys, vaeWeights } from "../../shared/masks/vae-weights.ts";
import { listZip } from "../../shared/masks/zip.ts";
import { loadVqvaeGolden, npy, worstDiff, writeZip } from "./support.ts";

const golden = loadVqvaeGolden();
const keys = vaeNpzKeys();

describe("readNpz", () => {
  it("lists numpy's savez_compressed archive: 47 deflated members, one per key", () => {
    const members = listZip(golden.npz, "vae-random.npz");
    expect(members.length).toBe(47);
    expect(members.every((m) => m.method === 8 && m.name.endsWith(".npy"))).toBe(true);
  });

  it("reads only the keys asked for, with their shapes", async () => {
    const arrays = await readNpz(golden.npz, ["_vq_vae._embedding", "decoder.6.weight"], "vae-random.npz");
    expect([...arrays.keys()]).toEqual(["_vq_vae._embedding", "decoder.6.weight"]);
    expect(arrays.get("_vq_vae._embedding")!.dims).toEqual([128, 512]);
    expect(arrays.get("decoder.6.weight")!.dims).toEqual([128, 64, 4, 4]);
    expect(arrays.get("_vq_vae._embedding")!.data.length).toBe(128 * 512);
  });

  for (const [label, version, deflate] of [["stored, .npy 1.0", 1, false], ["stored, .npy 2.0", 2, false], ["deflated, .npy 3.0", 3, true]] as const) {
    it(`decodes the same masks from the arrays rewritten ${label}, with extra keys`, async () => {
      const arrays = await readNpz(golden.npz, keys, "vae-random.npz");
      const members = [...arrays].map(([k, a]) => ({ name: `${k}.npy`, data: npy(a.dims, a.data, { version }), deflate }));
      members.push({ name: "_vq_vae._ema_w.npy", data: npy([2], Float32Array.of(1, 2), { version }), deflate });
      const again = await readNpz(await writeZip(members.reverse()), keys, "rewritten.npz");
      const w = vaeWeights((k) => again.get(k)!, "torch");
      expect(worstDiff(decodeMask(w, golden.cases[0].codes), golden.masks.subarray(0, 4096)).max).toBeLessThanOrEqual(1e-5);
    });
  }

  it("names the missing key and what the file holds", async () => {
    const zip = await writeZip([{ name: "weights.npy", data: npy([1], Float32Array.of(1)) }]);
    await expect(readNpz(zip, ["_vq_vae._embedding"], "x.npz")).rejects.toThrow(/x\.npz: no array "_vq_vae\._embedding" \(the file holds 1 arrays: weights\)/);
  });

  it("refuses a file that is not a zip, a truncated one and a corrupt member", async () => {
    await expect(readNpz(new TextEncoder().encode("not a zip at all, just text"), keys, "model.safetensors")).rejects.toThrow(/model\.safetensors: not a zip archive/);
    const member = npy([3], Float32Array.of(1, 2, 3));
    const zip = await writeZip([{ name: "a.npy", data: member }]);
    const truncated = zip.slice(zip.length - 22 - 51); // the central directory (46 + 5 bytes) and end record only
    await expect(readNpz(truncated, ["a"], "t.npz")).rejects.toThrow(/t\.npz: .*truncated\?/);
    const corrupt = zip.slice();
    corrupt[30 + 5 + member.length - 1] ^= 0xff; // the last data byte of a.npy (local header 30 + name 5)
    await expect(readNpz(corrupt, ["a"], "c.npz")).rejects.toThrow(/c\.npz: member a\.npy: CRC-32 mismatch/);
    const badDeflate = await writeZip([{ name: "a.npy", data: npy([3], Float32Array.of(1, 2, 3)), deflate: true }]);
    badDeflate.fill(0xff, 35, 45);
    await expect(readNpz(badDeflate, ["a"], "d.npz")).rejects.toThrow(/d\.npz: member a\.npy: /);
  });
});

describe("parseNpy", () => {
  const one = (opts: Parameters<typeof npy>[2]) => npy([2, 2], Float32Array.of(1, 2, 3, 4), opts);

  it("reads version 1, 2 and 3 headers", () => {
    for (const version of [1, 2, 3] as const) expect(parseNpy(one({ version }), "a.npy")).toEqual({ dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
  });

  it("names the field that is not little-endian float32 in C order", () => {
    expect(() => parseNpy(one({ descr: "<f8" }), "k.npy")).toThrow(/k\.npy: header field 'descr' is '<f8'; only little-endian float32/);
    expect(() => parseNpy(one({ descr: ">f4" }), "k.npy")).toThrow(/'descr' is '>f4'/);
    expect(() => parseNpy(one({ fortran: true }), "k.npy")).toThrow(/k\.npy: header field 'fortran_order' is True/);
    expect(() => parseNpy(new TextEncoder().encode("PK\x03\x04 something"), "k.npy")).toThrow(/k\.npy: not a \.npy array/);
    const short = one({}).slice(0, -4);
    expect(() => parseNpy(short, "k.npy")).toThrow(/k\.npy: shape \(2, 2\) needs 16 bytes of float32 data, the member has 12/);
  });
});
