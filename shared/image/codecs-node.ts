/**
 * Node's set-up of the WebAssembly image decoders (CLI, tests, benchmarks): compiles them from node_modules.
 * Worker code must not import this file (it reads the file system); workers import the `.wasm` files.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { provideImageCodecs } from "./codecs.ts";

const require = createRequire(import.meta.url);

/** Compiles the decoders and provides them to this process (idempotent). */
export async function provideImageCodecsForNode(): Promise<void> {
  const compile = async (file: string): Promise<WebAssembly.Module> => WebAssembly.compile(await readFile(require.resolve(file)));
  const [jpeg, webp] = await Promise.all([compile("@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm"), compile("@jsquash/webp/codec/dec/webp_dec.wasm")]);
  provideImageCodecs({ jpeg, webp });
}
