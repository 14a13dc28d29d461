/**
 * Measured single-core read bandwidth of this machine, the yardstick for "weight bytes streamed per second":
 * a 512 MiB buffer (written first, so its pages are real) is read end to end on one thread, best of a few
 * passes, two ways:
 *   - a WASM SIMD reduction (16-byte loads, four independent accumulators), the instruction set
 *     onnxruntime-web's kernels run on; its few-byte module is assembled below;
 *   - `Buffer.indexOf` of an absent byte, i.e. the C library's vectorised memchr (native AVX code).
 * The faster of the two is reported. GB = 10⁹ bytes.
 */

const MIB = 1024 * 1024;

/** Result in GB/s of each method and the reported maximum. */
export interface Bandwidth {
  readonly gbps: number;
  readonly wasmSimdGbps: number;
  readonly memchrGbps: number;
}

/** Measures with a `mib`-MiB buffer and `passes` passes per method (default 512 MiB × 4). */
export async function measureBandwidth(mib = 512, passes = 4): Promise<Bandwidth> {
  const bytes = mib * MIB;
  const wasmSimdGbps = await wasmSimd(bytes, passes);
  const memchrGbps = memchr(bytes, passes);
  return { gbps: Math.max(wasmSimdGbps, memchrGbps), wasmSimdGbps, memchrGbps };
}

function memchr(bytes: number, passes: number): number {
  const buf = Buffer.allocUnsafe(bytes).fill(7);
  let best = 0;
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    if (buf.indexOf(1) !== -1) throw new Error("bandwidth buffer was not filled");
    best = Math.max(best, bytes / ((performance.now() - t0) * 1e6));
  }
  return best;
}

async function wasmSimd(bytes: number, passes: number): Promise<number> {
  const pages = bytes / 65536 + 1;
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(sumModule(pages)));
  const sum = instance.exports.sum as (ptr: number, len: number) => number;
  const memory = instance.exports.mem as WebAssembly.Memory;
  new Uint8Array(memory.buffer, 0, bytes).fill(7);
  let best = 0;
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    sum(0, bytes);
    best = Math.max(best, bytes / ((performance.now() - t0) * 1e6));
  }
  return best;
}

/**
 * `(module (memory (export "mem") pages) (func (export "sum") (param $p i32) (param $n i32) (result i32) …))`:
 * adds 64 bytes per iteration into four i32x4 accumulators (`$n` a multiple of 64) and returns lane 0 of
 * their xor, so no load can be dropped.
 */
function sumModule(pages: number): Uint8Array<ArrayBuffer> {
  const leb = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return out;
  };
  const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const load = (acc: number, offset: number) => [0x20, acc, 0x20, 0x00, 0xfd, 0x00, 0x04, offset, 0xfd, 0xae, 0x01, 0x21, acc]; // acc = i32x4.add(acc, v128.load offset=… (p))
  const code = [
    0x02, 0x01, 0x7f, 0x04, 0x7b, // locals: $end i32; $a $b $c $d v128 (indices 2..6)
    0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x02, // $end = $p + $n
    0x03, 0x40, // loop
    ...load(3, 0), ...load(4, 16), ...load(5, 32), ...load(6, 48),
    0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x22, 0x00, // $p = $p + 64 (tee)
    0x20, 0x02, 0x49, 0x0d, 0x00, // br_if 0 ($p < $end)
    0x0b, // end loop
    0x20, 0x03, 0x20, 0x04, 0xfd, 0x51, 0x20, 0x05, 0xfd, 0x51, 0x20, 0x06, 0xfd, 0x51, // $a ^ $b ^ $c ^ $d
    0xfd, 0x1b, 0x00, // i32x4.extract_lane 0
    0x0b,
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]), // type 0: (i32, i32) → i32
    ...section(3, [0x01, 0x00]), // one function of type 0
    ...section(5, [0x01, 0x00, ...leb(pages)]), // one memory, min `pages`
    ...section(7, [0x02, ...name("sum"), 0x00, 0x00, ...name("mem"), 0x02, 0x00]),
    ...section(10, [0x01, ...leb(code.length), ...code]),
  ]);
}
