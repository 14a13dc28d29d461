/**
 * Streamed loading (shared/kernel/stage-file.ts): a weight file reaches kernel memory through one reused 1 MiB
 * block whatever shape its source has — whole bytes, a byte stream read BYOB, a default stream or an async
 * iterable with chunks of any size (1 byte, odd sizes, larger than the block) — with the same result: floats copied,
 * int8 codes made signed, an fp32 matrix transposed [k, n] → [n, k], tensors past a block boundary intact, and the
 * size and sha256 checked as the bytes pass.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ModelFormatError } from "../../shared/errors.ts";
import { KernelHeap } from "../../shared/kernel/heap.ts";
import { StageFile, type ByteSource } from "../../shared/kernel/stage-file.ts";
import type { Manifest, TensorEntry } from "../../shared/model/manifest.ts";

const N = 520; // the fp32 matrix [k = 600, n = 520] alone is 1.25 MB: it straddles the 1 MiB block boundary
const K = 600;
const FLOATS = 37; // a vector whose byte length is not a multiple of 64
const CODES = 96; // int8 "codes" [3, 1, 32] with 3 scales, placed after the matrix

interface Fixture {
  readonly file: Uint8Array;
  readonly manifest: Manifest;
  readonly matrix: Float32Array; // as stored, [k, n]
  readonly floats: Float32Array;
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
}

function fixture(dtype: "fp32" | "int8"): Fixture {
  const entries: TensorEntry[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  const put = (name: string, t: TensorEntry["dtype"], dims: number[], bytes: Uint8Array) => {
    entries.push({ name, dtype: t, dims, offset, length: bytes.length });
    parts.push(bytes);
    offset += bytes.length;
    const pad = (4 - (offset % 4)) % 4;
    if (pad) (parts.push(new Uint8Array(pad)), (offset += pad));
  };
  const floats = Float32Array.from({ length: FLOATS }, (_, i) => i * 0.5 - 3);
  const matrix = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 0.01));
  const codes = Uint8Array.from({ length: CODES }, (_, i) => (i * 37) & 0xff);
  const scales = Float32Array.from([0.5, 0.25, 2]);
  put("norm", "FLOAT", [FLOATS], new Uint8Array(floats.buffer));
  if (dtype === "fp32") put("w.weight", "FLOAT", [K, N], new Uint8Array(matrix.buffer));
  else {
    put("pad", "FLOAT", [K * N], new Uint8Array(matrix.buffer)); // undeclared: skipped, but hashed
    put("w.qweight", "UINT8", [3, 1, 32], codes);
    put("w.scales", "FLOAT", [3], new Uint8Array(scales.buffer));
  }
  const file = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) (file.set(p, at), (at += p.length));
  const manifest = {
    id: "stage-file-test",
    weights: { dtype, blockSize: 32 },
    tensors: { "s.bin": entries },
    files: { "s.bin": { bytes: file.length, sha256: createHash("sha256").update(file).digest("hex") } },
  } as unknown as Manifest;
  return { file, manifest, matrix, floats, codes, scales };
}

function chunked(file: Uint8Array, sizes: readonly number[]): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 0, i = 0; at < file.length; i++) {
    const n = Math.min(sizes[i % sizes.length], file.length - at);
    out.push(file.slice(at, at + n)); // fresh, unaligned-length chunks, as a network stream gives them
    at += n;
  }
  return out;
}

const SOURCES: Record<string, (file: Uint8Array) => ByteSource> = {
  "whole bytes": (f) => f,
  "a byte stream (BYOB), odd chunks": (f) => {
    const chunks = chunked(f, [7, 1, 65537, 3, 1 << 20]);
    return new ReadableStream({
      type: "bytes",
      pull(c) {
        if (chunks.length) return c.enqueue(chunks.shift()!);
        c.close();
        c.byobRequest?.respond(0); // a pending BYOB read ends with the stream (as fetch bodies do)
      },
    });
  },
  "a default stream, 1-byte and 1.5 MiB chunks": (f) => {
    const chunks = chunked(f, [1, 1, 3 << 19, 5]);
    return new ReadableStream<Uint8Array>({ pull: (c) => void (chunks.length ? c.enqueue(chunks.shift()!) : c.close()) });
  },
  "an async iterable": (f) =>
    (async function* () {
      yield* chunked(f, [4093, 99991]);
    })(),
};

function heap(): KernelHeap {
  return new KernelHeap(new WebAssembly.Memory({ initial: 1 }), 64);
}

describe("StageFile.fill", () => {
  for (const [what, source] of Object.entries(SOURCES)) {
    it(`${what}: fp32 floats copied and the matrix transposed`, async () => {
      const f = fixture("fp32");
      const h = heap();
      const file = new StageFile(f.manifest, "s.bin", h);
      const norm = file.floats("norm", [FLOATS]);
      const w = file.matrix("w", N, K);
      await file.fill(source(f.file));
      expect(Array.from(h.f32(norm, FLOATS))).toEqual(Array.from(f.floats));
      if (w.kind !== "f32") throw new Error("expected an f32 matrix");
      const got = h.f32(w.w, N * K);
      let worst = 0;
      for (let r = 0; r < K; r++) for (let c = 0; c < N; c++) worst = Math.max(worst, Math.abs(got[c * K + r] - f.matrix[r * N + c]));
      expect(worst).toBe(0);
    });

    it(`${what}: int8 codes made signed, scales copied, an undeclared tensor skipped`, async () => {
      const f = fixture("int8");
      const h = heap();
      const file = new StageFile(f.manifest, "s.bin", h);
      const w = file.matrix("w", 3, 32);
      await file.fill(source(f.file));
      if (w.kind !== "q8") throw new Error("expected a q8 matrix");
      expect(Array.from(h.u8(w.codes, CODES))).toEqual(Array.from(f.codes, (b) => b ^ 0x80));
      expect(Array.from(h.f32(w.scales, 3))).toEqual(Array.from(f.scales));
    });
  }

  it("a file of the wrong size or digest is refused with a ModelFormatError naming it", async () => {
    const f = fixture("fp32");
    const fill = (bytes: Uint8Array) => {
      const file = new StageFile(f.manifest, "s.bin", heap());
      file.floats("norm", [FLOATS]);
      return file.fill(bytes);
    };
    await expect(fill(f.file.subarray(0, f.file.length - 4))).rejects.toThrow(ModelFormatError);
    await expect(fill(f.file.subarray(0, f.file.length - 4))).rejects.toThrow(/s\.bin has \d+ bytes, the manifest says/);
    const flipped = f.file.slice();
    flipped[12345] ^= 1;
    await expect(fill(flipped)).rejects.toThrow(/s\.bin fails its sha256 check/);
  });
});
