/** safetensors reader: dtype decoding, header validation, on-demand reads. Files are built in a temp dir. */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeToFloat32, halfToFloat } from "../../converter/checkpoint/dtypes.ts";
import { SafetensorsFile } from "../../converter/checkpoint/safetensors.ts";
import { ModelFormatError } from "../../shared/errors.ts";

const tmp = mkdtempSync(join(tmpdir(), "ckpt-st-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let serial = 0;

interface Spec {
  dtype: string;
  shape: number[];
  data: Uint8Array;
  offsets?: [number, number];
}

/** Writes a safetensors file; `pad` spaces lengthen the header (to misalign the data on purpose). */
function writeFile(tensors: Record<string, Spec>, pad = 0, header?: string): string {
  const json: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let at = 0;
  for (const [name, t] of Object.entries(tensors)) {
    json[name] = { dtype: t.dtype, shape: t.shape, data_offsets: t.offsets ?? [at, at + t.data.length] };
    at += t.data.length;
  }
  const h = Buffer.from((header ?? JSON.stringify(json)) + " ".repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const path = join(tmp, `f${serial++}.safetensors`);
  writeFileSync(path, Buffer.concat([len, h, ...Object.values(tensors).map((t) => t.data)]));
  return path;
}

const u16 = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);
const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

async function expectFormatError(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  expect((err as Error).message).toMatch(message);
}

describe("dtype decoding", () => {
  it("F16: normals, subnormals, zeros, infinities, NaN", () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
    const want = [1, -2, 65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, 0, -0, Infinity, -Infinity, NaN, Math.fround(0.333251953125)];
    const got = decodeToFloat32("F16", u16(...bits));
    want.forEach((w, i) => expect(Object.is(got[i], w), `bits 0x${bits[i].toString(16)} → ${got[i]}, want ${w}`).toBe(true));
    expect(halfToFloat(0x8001)).toBe(-(2 ** -24));
  });

  it("BF16 is the high half of a float32, bit for bit", () => {
    const values = [1, -2.5, 3.140625, -0, Infinity, 1e-40];
    const hi = values.map((v) => new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16);
    const got = decodeToFloat32("BF16", u16(...hi, 0x7fc1));
    expect([...got.slice(0, 5)]).toEqual([1, -2.5, 3.140625, -0, Infinity]);
    expect(new Uint32Array(got.buffer)[5]).toBe(hi[5] << 16);
    expect(new Uint32Array(got.buffer)[6]).toBe(0x7fc10000); // NaN payload kept
  });

  it("decodes views at odd byte offsets", () => {
    const buf = new Uint8Array(7);
    buf.set(u16(0x3c00, 0xc000, 0x3f80), 1);
    expect([...decodeToFloat32("F16", buf.subarray(1, 5))]).toEqual([1, -2]);
    expect([...decodeToFloat32("BF16", buf.subarray(5, 7))]).toEqual([1]);
    expect(() => decodeToFloat32("F16", buf.subarray(0, 3))).toThrow(/not a whole number of elements/);
  });

  it("F32 is copied, not aliased", () => {
    const src = f32(1.5, -3);
    const got = decodeToFloat32("F32", src);
    src.fill(0);
    expect([...got]).toEqual([1.5, -3]);
  });
});

describe("SafetensorsFile", () => {
  it("reads F32, F16 and BF16 tensors by offset and ignores __metadata__", async () => {
    const path = writeFile({
      a: { dtype: "F32", shape: [2, 2], data: f32(1, 2, 3, 4) },
      b: { dtype: "F16", shape: [3], data: u16(0x3c00, 0x4000, 0x0001) },
      c: { dtype: "BF16", shape: [2], data: u16(0x3f80, 0xc040) },
    });
    const file = await SafetensorsFile.open(path);
    expect([...file.tensors.keys()]).toEqual(["a", "b", "c"]);
    expect(file.tensors.get("a")!.shape).toEqual([2, 2]);
    expect([...(await file.read("a"))]).toEqual([1, 2, 3, 4]);
    expect([...(await file.read("b"))]).toEqual([1, 2, 2 ** -24]);
    expect([...(await file.read("c"))]).toEqual([1, -3]);
  });

  it("decodes 16-bit data that starts at an odd file offset", async () => {
    const tensors = { x: { dtype: "BF16", shape: [2], data: u16(0x4000, 0xbf80) }, y: { dtype: "F16", shape: [1], data: u16(0x3800) } };
    let file = await SafetensorsFile.open(writeFile(tensors, 0));
    if (file.tensors.get("x")!.offset % 2 === 0) file = await SafetensorsFile.open(writeFile(tensors, 1));
    expect(file.tensors.get("x")!.offset % 2).toBe(1);
    expect([...(await file.read("x"))]).toEqual([2, -1]);
    expect([...(await file.read("y"))]).toEqual([0.5]);
  });

  it("opens a 6 GiB (sparse) file by reading only its header, and reads one tensor", async () => {
    const big = 6 * 2 ** 30;
    const header = JSON.stringify({
      small: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      huge: { dtype: "BF16", shape: [3, 2 ** 30], data_offsets: [8, 8 + 6 * 2 ** 30] },
    });
    const path = writeFile({ small: { dtype: "F32", shape: [2], data: f32(7, 8) } }, 0, header);
    const size = 8 + Buffer.byteLength(header) + 8 + big;
    truncateSync(path, size);
    const file = await SafetensorsFile.open(path);
    expect(file.fileSize).toBe(size);
    expect(file.tensors.get("huge")!.byteLength).toBe(big);
    expect([...(await file.read("small"))]).toEqual([7, 8]);
  });

  it("rejects a file shorter than the 8-byte length", async () => {
    const path = join(tmp, "short.safetensors");
    writeFileSync(path, Buffer.from([1, 2, 3]));
    await expectFormatError(SafetensorsFile.open(path), /short\.safetensors: file is 3 bytes, too short/);
  });

  it("rejects a header length beyond the file", async () => {
    const path = writeFile({ a: { dtype: "F32", shape: [1], data: f32(1) } });
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(2n ** 40n);
    const { openSync, writeSync, closeSync } = await import("node:fs");
    const fd = openSync(path, "r+");
    writeSync(fd, bytes, 0, 8, 0);
    closeSync(fd);
    await expectFormatError(SafetensorsFile.open(path), new RegExp(`${path}: header length 1099511627776 runs past the end`));
  });

  const bad: [string, string, RegExp][] = [
    ["malformed JSON", "{\"a\": {", /header is not valid UTF-8 JSON/],
    ["a JSON array", "[1, 2]", /header is not a JSON object/],
    ["an unknown dtype", JSON.stringify({ a: { dtype: "Q4", shape: [1], data_offsets: [0, 4] } }), /tensor a: unknown dtype "Q4"/],
    ["a bad shape", JSON.stringify({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }), /tensor a: shape \[-1\] is not a list of sizes/],
    ["reversed offsets", JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }), /tensor a: data_offsets \[4,0\]/],
    ["offsets past the data", JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), /tensor a: data_offsets \[0, 8\] run past the end of the data \(4 bytes/],
    ["a size not matching the shape", JSON.stringify({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }), /tensor a: holds 4 bytes but shape \[2\] of F32 needs 8/],
    ["overlapping tensors", JSON.stringify({ a: { dtype: "F16", shape: [2], data_offsets: [0, 4] }, b: { dtype: "F16", shape: [1], data_offsets: [2, 4] } }), /tensors a and b overlap/],
  ];
  it.each(bad)("rejects %s, naming the file", async (_what, header, message) => {
    const path = writeFile({ a: { dtype: "F32", shape: [1], data: f32(1) } }, 0, header);
    await expectFormatError(SafetensorsFile.open(path), message);
    await expectFormatError(SafetensorsFile.open(path), new RegExp(path.replace(/[.]/g, "\\.")));
  });

  it("refuses to decode integer tensors, naming tensor and dtype", async () => {
    const path = writeFile({ ids: { dtype: "I32", shape: [2], data: new Uint8Array(8) }, d: { dtype: "F64", shape: [1], data: new Uint8Array(8) } });
    const file = await SafetensorsFile.open(path);
    expect([...(await file.readBytes("ids"))]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    await expectFormatError(file.read("ids"), /tensor ids has dtype I32/);
    await expectFormatError(file.read("d"), /tensor d has dtype F64/);
    await expectFormatError(file.read("nope"), /no tensor named nope/);
  });

  it("notices a file that shrank after open", async () => {
    const path = writeFile({ a: { dtype: "F32", shape: [4], data: f32(1, 2, 3, 4) } });
    const file = await SafetensorsFile.open(path);
    truncateSync(path, file.fileSize - 4);
    await expectFormatError(file.read("a"), /changed size/);
  });

  it("reports a missing file by path", async () => {
    await expectFormatError(SafetensorsFile.open(join(tmp, "absent.safetensors")), /absent\.safetensors: cannot open \(ENOENT\)/);
  });
});
