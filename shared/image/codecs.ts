/**
 * The compiled WebAssembly image decoders an isolate provides once at start-up. Workers cannot compile WASM
 * from bytes at run time, so the worker imports each `.wasm` as a compiled module (wrangler's `CompiledWasm`
 * rule) and hands it here; Node (CLI, tests) compiles the same files (`./codecs-node.ts`). Only immutable
 * compiled modules live here: every decode instantiates its own instance, so no image's state or memory
 * outlives its decode.
 */

/** Compiled decoder modules. */
export interface ImageCodecModules {
  /** libjpeg-turbo's decoder (mozjpeg build of @jsquash/jpeg: `codec/dec/mozjpeg_dec.wasm`). */
  readonly jpeg: WebAssembly.Module;
  /** libwebp's decoder (@jsquash/webp: `codec/dec/webp_dec.wasm`). */
  readonly webp: WebAssembly.Module;
}

const provided: { modules?: ImageCodecModules } = {};

/** Sets this isolate's decoders (idempotent: the first call wins, later calls with other modules are ignored). */
export function provideImageCodecs(modules: ImageCodecModules): void {
  provided.modules ??= modules;
}

/** This isolate's decoders. @throws Error when none were provided (a wiring fault, not bad input). */
export function imageCodecs(): ImageCodecModules {
  if (!provided.modules) throw new Error("image decoders are not set up: call provideImageCodecs() (or provideImageCodecsForNode()) at start-up");
  return provided.modules;
}
