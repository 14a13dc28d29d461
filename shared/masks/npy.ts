/**
 * numpy's `.npy` format, versions 1.0–3.0 (numpy/lib/format.py's docstring is the specification):
 *
 *   "\x93NUMPY" major minor  header_len (uint16 LE for v1, uint32 LE for v2/v3)  header  data
 *
 * The header is a Python dict literal, `{'descr': '<f4', 'fortran_order': False, 'shape': (128, 512), }`,
 * latin-1 in v1/v2 and UTF-8 in v3. Only what the VQ-VAE file needs is accepted: little-endian float32
 * (`'<f4'`) in C order; anything else is an error naming the field.
 */
import { ModelFormatError } from "../errors.ts";

/** A float32 array read from a `.npy` member. */
export interface NpyArray {
  /** Row-major (C order) dimensions; [] for a scalar. */
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Parses one `.npy` file holding a little-endian float32 array in C order.
 * @param what names the array in error messages (e.g. "vae-oid.npz: decoder.0.weight.npy")
 * @throws ModelFormatError naming the field that is wrong
 */
export function parseNpy(bytes: Uint8Array, what: string): NpyArray {
  function fail(msg: string): never {
    throw new ModelFormatError(`${what}: ${msg}`);
  }
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail("not a .npy array (bad magic string)");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) [headerLength, headerStart] = [view.getUint16(8, true), 10];
  else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail("truncated header");
    [headerLength, headerStart] = [view.getUint32(8, true), 12];
  } else return fail(`.npy version ${major}.${bytes[7]} is not supported (1.0 to 3.0 are)`);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) fail("truncated header");
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(headerStart, dataStart));

  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  if (descr === undefined) fail(`header field 'descr' missing in ${JSON.stringify(header.trim())}`);
  if (descr !== "<f4") fail(`header field 'descr' is '${descr}'; only little-endian float32 ('<f4') is supported`);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  if (fortran === undefined) fail("header field 'fortran_order' missing");
  if (fortran === "True") fail("header field 'fortran_order' is True; only C-order arrays are supported");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) fail("header field 'shape' missing");
  const dims = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : fail(`header field 'shape' has a non-integer entry '${s}'`)));

  const count = dims.reduce((a, d) => a * d, 1);
  const have = bytes.length - dataStart;
  if (have !== count * 4) fail(`shape (${dims.join(", ")}) needs ${count * 4} bytes of float32 data, the member has ${have}`);
  // A copy: the data start is only 16/64-byte aligned relative to the member, not to the buffer.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart)); // every JS host we run on is little-endian
  return { dims, data };
}
