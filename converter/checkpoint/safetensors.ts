/**
 * One safetensors file, read without loading it whole.
 *
 * Layout (huggingface/safetensors, "Format"): u64 little-endian N, then N bytes of UTF-8 JSON mapping each tensor
 * name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the byte after the header), an optional
 * `__metadata__` string map (ignored here), then the raw little-endian tensor data. `open` reads only the header;
 * `read` fetches one tensor's bytes by offset.
 */
import { open as openFile, type FileHandle } from "node:fs/promises";
import { ModelFormatError } from "../../shared/errors.ts";
import { DTYPE_BYTES, decodeToFloat32, isFloatDtype } from "./dtypes.ts";

/** safetensors' own upper bound on the header size (MAX_HEADER_SIZE in the reference implementation). */
const MAX_HEADER_BYTES = 100_000_000;
/** fs reads are capped just under 2 GiB per call; larger tensors are read in chunks of this size. */
const READ_CHUNK_BYTES = 1 << 28;

/** Where one tensor lives inside its file. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: string; // a key of DTYPE_BYTES
  readonly shape: readonly number[];
  readonly offset: number; // absolute byte offset in the file
  readonly byteLength: number; // product(shape) × dtype size
}

/** An open safetensors file: its validated header, and tensors read on demand. */
export class SafetensorsFile {
  private constructor(
    /** Path the file was opened from; every error names it. */
    readonly path: string,
    /** File size in bytes when the header was read; `read` refuses a file that has changed size since. */
    readonly fileSize: number,
    /** Every tensor in the header, by name (header order). */
    readonly tensors: ReadonlyMap<string, TensorEntry>,
  ) {}

  /** Reads and validates the header of `path`; throws ModelFormatError naming the file on any defect. */
  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await openOrThrow(path);
    try {
      const fileSize = (await handle.stat()).size;
      if (fileSize < 8) throw fail(path, `file is ${fileSize} bytes, too short for the 8-byte header length`);
      const lenBytes = await readExactly(handle, path, 0, 8);
      const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(fileSize - 8)) {
        throw fail(path, `header length ${headerLen} runs past the end of the file (${fileSize} bytes)`);
      }
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw fail(path, `header length ${headerLen} exceeds 100 MB`);
      const n = Number(headerLen);
      const headerBytes = await readExactly(handle, path, 8, n);
      const tensors = parseHeader(path, headerBytes, 8 + n, fileSize);
      return new SafetensorsFile(path, fileSize, tensors);
    } finally {
      await handle.close();
    }
  }

  /** The raw little-endian bytes of tensor `name`. */
  async readBytes(name: string): Promise<Uint8Array> {
    const entry = this.entry(name);
    const out = new Uint8Array(entry.byteLength);
    await this.readInto(entry, out);
    return out;
  }

  /** Tensor `name` decoded to float32 (F32, F16 or BF16; other dtypes throw ModelFormatError). */
  async read(name: string): Promise<Float32Array<ArrayBuffer>> {
    const entry = this.entry(name);
    if (!isFloatDtype(entry.dtype)) {
      throw fail(this.path, `tensor ${name} has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`);
    }
    if (entry.dtype === "F32") {
      const out = new Float32Array(entry.byteLength / 4);
      await this.readInto(entry, new Uint8Array(out.buffer));
      return out;
    }
    return decodeToFloat32(entry.dtype, await this.readBytes(name));
  }

  private entry(name: string): TensorEntry {
    const entry = this.tensors.get(name);
    if (entry === undefined) throw fail(this.path, `no tensor named ${name}`);
    return entry;
  }

  private async readInto(entry: TensorEntry, out: Uint8Array): Promise<void> {
    const handle = await openOrThrow(this.path);
    try {
      const size = (await handle.stat()).size;
      if (size !== this.fileSize) {
        throw fail(this.path, `file changed size from ${this.fileSize} to ${size} bytes since it was opened`);
      }
      for (let done = 0; done < out.byteLength; ) {
        const len = Math.min(READ_CHUNK_BYTES, out.byteLength - done);
        const view = out.subarray(done, done + len);
        await readFullyInto(handle, this.path, entry.offset + done, view);
        done += len;
      }
    } finally {
      await handle.close();
    }
  }
}

/** Validates a parsed header: every entry well-formed, sized by its shape, inside the data, no overlaps. */
function parseHeader(path: string, bytes: Uint8Array, dataStart: number, fileSize: number): Map<string, TensorEntry> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw fail(path, `header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw fail(path, "header is not a JSON object");
  }
  const dataLength = fileSize - dataStart;
  const tensors = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    tensors.set(name, parseEntry(path, name, raw, dataStart, dataLength));
  }
  const byOffset = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    if (byOffset[i].offset < prev.offset + prev.byteLength) {
      throw fail(path, `tensors ${prev.name} and ${byOffset[i].name} overlap`);
    }
  }
  return tensors;
}

function parseEntry(path: string, name: string, raw: unknown, dataStart: number, dataLength: number): TensorEntry {
  const bad = (what: string) => fail(path, `tensor ${name}: ${what}`);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw bad("header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of sizes`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} are not [begin, end] with begin <= end`);
  }
  const [begin, end] = offsets as number[];
  if (end > dataLength) {
    throw bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes; file truncated?)`);
  }
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = numel * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw bad(`holds ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${expected}`);
  }
  return { name, dtype, shape: Object.freeze([...(shape as number[])]), offset: dataStart + begin, byteLength: expected };
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

async function openOrThrow(path: string): Promise<FileHandle> {
  try {
    return await openFile(path, "r");
  } catch (err) {
    throw fail(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

async function readExactly(handle: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await readFullyInto(handle, path, position, out);
  return out;
}

/** Fills `out` from `position`, looping over short reads; a premature end of file is a format error. */
async function readFullyInto(handle: FileHandle, path: string, position: number, out: Uint8Array): Promise<void> {
  let done = 0;
  while (done < out.byteLength) {
    const { bytesRead } = await handle.read(out, done, out.byteLength - done, position + done);
    if (bytesRead === 0) throw fail(path, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

function fail(path: string, message: string): ModelFormatError {
  return new ModelFormatError(`${path}: ${message}`);
}
