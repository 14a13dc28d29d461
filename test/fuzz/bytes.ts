/** Byte helpers for the structure-aware image fuzzers; runtime-neutral (Node and workerd): no node: imports. */

/** Byte arrays joined. */
export function cat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

export const u32be = (v: number): Uint8Array => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
export const u16be = (v: number): Uint8Array => Uint8Array.of((v >>> 8) & 255, v & 255);
export const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (an independent copy from the decoder's, so a decoder bug cannot hide in the fixture). */
export function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adler-32 (RFC 1950 §8). */
export function adler32(bytes: Uint8Array): number {
  let [a, b] = [1, 0];
  for (const x of bytes) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib-compresses with the platform's CompressionStream (async; used to make seeds before a property runs). */
export async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A zlib stream of stored blocks (RFC 1951 §3.2.4), written by hand so that tests can make every header field
 * lie: `blocks` are the payload cut points; `nlen` overrides a block's NLEN; `final` says whether the last block
 * has BFINAL set; `adler` overrides the checksum.
 */
export function storedZlib(
  data: Uint8Array,
  opts: { cuts?: readonly number[]; nlen?: ReadonlyMap<number, number>; final?: boolean; adler?: number } = {},
): Uint8Array {
  const cuts = (opts.cuts ?? []).map((c) => c % (data.length + 1)).filter((c) => c > 0 && c < data.length);
  const points = [...new Set([0, ...cuts, data.length])].sort((a, b) => a - b);
  if (points.length === 1) points.push(0); // no data: one empty block
  const parts: Uint8Array[] = [Uint8Array.of(0x78, 0x01)];
  for (let i = 0; i + 1 < points.length; i++) {
    const len = points[i + 1] - points[i]; // ≤ 65535: the fuzzers' images are small
    const final = i + 2 === points.length && opts.final !== false ? 1 : 0;
    const nlen = opts.nlen?.get(i) ?? ~len & 0xffff;
    parts.push(Uint8Array.of(final, len & 255, len >> 8, nlen & 255, nlen >> 8), data.subarray(points[i], points[i + 1]));
  }
  parts.push(u32be(opts.adler ?? adler32(data)));
  return cat(...parts);
}
