/**
 * A small zip reader for `.npz` files (numpy's `savez` / `savez_compressed`): the central directory (zip64
 * included, as numpy writes members with `force_zip64`), members that are stored (method 0) or deflated
 * (method 8), each checked against its CRC-32 and size. Inflation uses the platform's
 * `DecompressionStream("deflate-raw")` (Node ≥ 20 and workerd both have it), so nothing here needs Node APIs.
 *
 * Layout references: PKWARE APPNOTE.TXT 6.3 §4.3.7 (local header), §4.3.12 (central directory header),
 * §4.3.14–4.3.16 (zip64 end of central directory record, locator, end of central directory), §4.5.3 (zip64
 * extended information extra field).
 */
import { ModelFormatError } from "../errors.ts";

/** One member of a zip archive, as its central directory describes it. */
export interface ZipMember {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  /** Offset of the member's local header. */
  readonly headerOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_END64_LOCATOR = 0x07064b50;
/** The end record is 22 bytes plus a comment of at most 65535. */
const MAX_END_SEARCH = 22 + 0xffff;

const u16 = (b: DataView, o: number): number => b.getUint16(o, true);
const u32 = (b: DataView, o: number): number => b.getUint32(o, true);
function u64(b: DataView, o: number, what: string): number {
  const v = b.getBigUint64(o, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(`${what}: a zip64 field is too large (${v})`);
  return Number(v);
}

/**
 * Lists the members of a zip archive from its central directory.
 * @param what the file's name, for error messages
 * @throws ModelFormatError when the bytes are not a readable zip archive
 */
export function listZip(bytes: Uint8Array, what: string): ZipMember[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  function fail(msg: string): never {
    throw new ModelFormatError(`${what}: ${msg}`);
  }
  let end = -1;
  for (let o = bytes.length - 22; o >= Math.max(0, bytes.length - MAX_END_SEARCH); o--) {
    if (u32(view, o) === SIG_END) {
      end = o;
      break;
    }
  }
  if (end < 0) fail("not a zip archive (no end of central directory record); an .npz file is a zip of .npy members");
  let count = u16(view, end + 10);
  let dirSize = u32(view, end + 12);
  let dirOffset = u32(view, end + 16);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const locator = end - 20;
    if (locator < 0 || u32(view, locator) !== SIG_END64_LOCATOR) fail("zip64 end of central directory locator missing");
    const record = u64(view, locator + 8, what);
    if (record + 56 > bytes.length || u32(view, record) !== SIG_END64) fail("zip64 end of central directory record missing");
    count = u64(view, record + 32, what);
    dirSize = u64(view, record + 40, what);
    dirOffset = u64(view, record + 48, what);
  }
  if (dirOffset + dirSize > bytes.length) fail(`the central directory (${dirSize} bytes at ${dirOffset}) lies past the end of the file (${bytes.length} bytes): truncated?`);
  const members: ZipMember[] = [];
  let o = dirOffset;
  for (let i = 0; i < count; i++) {
    if (o + 46 > bytes.length || u32(view, o) !== SIG_CENTRAL) fail(`central directory entry ${i} is malformed`);
    const flags = u16(view, o + 8);
    const nameLength = u16(view, o + 28);
    const extraLength = u16(view, o + 30);
    const commentLength = u16(view, o + 32);
    const name = new TextDecoder().decode(bytes.subarray(o + 46, o + 46 + nameLength));
    if (flags & 1) fail(`member ${name} is encrypted`);
    let size = u32(view, o + 24);
    let compressedSize = u32(view, o + 20);
    let headerOffset = u32(view, o + 42);
    // Zip64 extra field: the 64-bit values of exactly those fields that hold 0xFFFFFFFF, in this order.
    for (let e = o + 46 + nameLength; e + 4 <= o + 46 + nameLength + extraLength; ) {
      const id = u16(view, e);
      const length = u16(view, e + 2);
      if (id === 0x0001) {
        let at = e + 4;
        const next = (): number => {
          const v = u64(view, at, `${what}: member ${name}`);
          at += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (headerOffset === 0xffffffff) headerOffset = next();
      }
      e += 4 + length;
    }
    members.push({ name, method: u16(view, o + 10), crc32: u32(view, o + 16), compressedSize, size, headerOffset });
    o += 46 + nameLength + extraLength + commentLength;
  }
  return members;
}

/**
 * The uncompressed bytes of one member, checked against its size and CRC-32.
 * @param what the archive's name, for error messages
 * @throws ModelFormatError for an unsupported method, a truncated archive or corrupt data
 */
export async function readZipMember(bytes: Uint8Array, member: ZipMember, what: string): Promise<Uint8Array> {
  function fail(msg: string): never {
    throw new ModelFormatError(`${what}: member ${member.name}: ${msg}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = member.headerOffset;
  if (h + 30 > bytes.length || u32(view, h) !== SIG_LOCAL) fail("its local header is missing");
  const start = h + 30 + u16(view, h + 26) + u16(view, h + 28);
  const end = start + member.compressedSize;
  if (end > bytes.length) fail(`its data (${member.compressedSize} bytes) runs past the end of the file: truncated?`);
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (member.method === 0) data = raw;
  else if (member.method === 8) data = await inflateRaw(raw, member.size).catch((err: unknown) => fail(`deflate data is corrupt (${err instanceof Error ? err.message : String(err)})`));
  else data = fail(`compression method ${member.method} is not supported (only stored and deflated)`);
  if (data.length !== member.size) fail(`${data.length} bytes after decompression, the directory says ${member.size}`);
  if (crc32(data) !== member.crc32) fail("CRC-32 mismatch: the file is corrupt");
  return data;
}

/** Inflates a raw deflate stream, refusing output longer than `limit` bytes. */
async function inflateRaw(data: Uint8Array, limit: number): Promise<Uint8Array> {
  const stream = new DecompressionStream("deflate-raw");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const writing = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
  writing.catch(() => undefined); // a corrupt stream also fails the reader, which reports it
  const out = new Uint8Array(limit);
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > limit) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`inflates to more than the ${limit} bytes the directory declares`);
    }
    out.set(value, at);
    at += value.length;
  }
  await writing;
  return out.subarray(0, at);
}

let CRC_TABLE: Uint32Array | null = null;

/** CRC-32 (ISO-HDLC, the zip polynomial 0xEDB88320, reflected). */
export function crc32(data: Uint8Array): number {
  if (CRC_TABLE === null) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
