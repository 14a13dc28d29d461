/** An independent safetensors reader for tests: every tensor's header entry and bytes (whole file in memory). */
import { readFileSync } from "node:fs";

export interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

export function readRaw(path: string): Map<string, RawTensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  const out = new Map<string, RawTensor>();
  for (const [name, e] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    out.set(name, { dtype: e.dtype, shape: e.shape, bytes: buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]) });
  }
  return out;
}
