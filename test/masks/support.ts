/**
 * The VQ-VAE golden (../shared/golden-vqvae: random weights with the real key names, three code sets, the
 * float64 reference output, and each mask placed in a box) and a small npz writer for reader tests. Missing
 * golden files throw: these tests fail without their fixtures.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SHARED } from "../helpers/golden.ts";
import { crc32 } from "../../shared/masks/zip.ts";

export const VQVAE_DIR = join(SHARED, "golden-vqvae");

function golden(name: string): Buffer {
  const path = join(VQVAE_DIR, name);
  if (!existsSync(path)) throw new Error(`VQ-VAE golden file missing: ${path}`);
  return readFileSync(path);
}

/** One code set of codes.json. */
export interface CodeCase {
  readonly name: string;
  readonly codes: number[];
  readonly grid_4x4: number[][];
  readonly seg_tokens: string;
}

/** One case of placement.json (the demo convention's entry is the one this project follows). */
export interface PlacementCase {
  readonly case: number;
  readonly loc_tokens_y1_x1_y2_x2: [number, number, number, number];
  readonly demo: {
    readonly box_pixels_y1_x1_y2_x2: [number, number, number, number];
    readonly mask64_uint8_sha256: string;
    readonly resized_shape_hw: [number, number];
    readonly resized_uint8_base64: string;
    readonly resized_uint8_sum: number;
  };
}

/** The golden's files, parsed. */
export function loadVqvaeGolden() {
  const masks = golden("masks.bin");
  const placement = JSON.parse(golden("placement.json").toString("utf8"));
  return {
    npz: new Uint8Array(golden("vae-random.npz")),
    cases: JSON.parse(golden("codes.json").toString("utf8")).cases as CodeCase[],
    /** float32[3, 64, 64], the raw decoder output per case. */
    masks: new Float32Array(masks.buffer.slice(masks.byteOffset, masks.byteOffset + masks.byteLength)),
    placement: placement as { image_height: number; image_width: number; examples: PlacementCase[] },
  };
}

/** Largest |a − b| and where it is. */
export function worstDiff(a: Float32Array, b: Float32Array): { max: number; index: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max || Number.isNaN(d)) [max, index] = [d, i];
  }
  return { max, index };
}

/** A zip member to write: stored or deflated. */
export interface ZipInput {
  readonly name: string;
  readonly data: Uint8Array;
  readonly deflate?: boolean;
}

async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Writes a plain (non-zip64) zip archive, as numpy.savez (stored) or savez_compressed (deflated) would. */
export async function writeZip(members: readonly ZipInput[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = new TextEncoder().encode(m.name);
    const body = m.deflate ? await deflateRaw(m.data) : m.data;
    const crc = crc32(m.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(8, m.deflate ? 8 : 0, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, body.length, true);
    local.setUint32(22, m.data.length, true);
    local.setUint16(26, name.length, true);
    const dir = new DataView(new ArrayBuffer(46));
    dir.setUint32(0, 0x02014b50, true);
    dir.setUint16(4, 20, true);
    dir.setUint16(6, 20, true);
    dir.setUint16(10, m.deflate ? 8 : 0, true);
    dir.setUint32(16, crc, true);
    dir.setUint32(20, body.length, true);
    dir.setUint32(24, m.data.length, true);
    dir.setUint16(28, name.length, true);
    dir.setUint32(42, offset, true);
    parts.push(new Uint8Array(local.buffer), name, body);
    central.push(new Uint8Array(dir.buffer), name);
    offset += 30 + name.length + body.length;
  }
  const dirSize = central.reduce((a, c) => a + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, members.length, true);
  end.setUint16(10, members.length, true);
  end.setUint32(12, dirSize, true);
  end.setUint32(16, offset, true);
  const all = [...parts, ...central, new Uint8Array(end.buffer)];
  const out = new Uint8Array(all.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A `.npy` file of float32 data: `version` 1, 2 or 3, header padded to 64 bytes as numpy does. */
export function npy(dims: readonly number[], data: Float32Array, opts: { version?: 1 | 2 | 3; descr?: string; fortran?: boolean } = {}): Uint8Array {
  const version = opts.version ?? 1;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(", ")})`;
  let header = `{'descr': '${opts.descr ?? "<f4"}', 'fortran_order': ${opts.fortran ? "True" : "False"}, 'shape': ${shape}, }`;
  const prefix = version === 1 ? 10 : 12;
  header += " ".repeat((64 - ((prefix + header.length + 1) % 64)) % 64) + "\n";
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(prefix + head.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, head.length, true);
  else view.setUint32(8, head.length, true);
  out.set(head, prefix);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), prefix + head.length);
  return out;
}
