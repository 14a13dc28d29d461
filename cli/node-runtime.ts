/** Node-side wiring of the runtime: onnxruntime's WASM bytes from node_modules and a folder as model store. */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { configureOrt } from "../shared/engine/ort.ts";
import { initKernelForNode } from "../shared/kernel/node.ts";
import { PaliGemmaRuntime, type RuntimeOptions } from "../shared/engine/runtime.ts";
import type { ModelStore } from "../shared/engine/types.ts";

/** A model folder on disk as a ModelStore. */
export function folderStore(dir: string): ModelStore {
  return {
    async get(name) {
      try {
        return new Uint8Array(await readFile(join(dir, name)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
    },
  };
}

/** Configures onnxruntime-web for Node (idempotent). */
export async function initOrtForNode(): Promise<void> {
  const require = createRequire(import.meta.url);
  const wasmPath = require.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm");
  configureOrt({ kind: "bytes", bytes: new Uint8Array(await readFile(wasmPath)) });
}

/** Loads a converted model folder with onnxruntime-web. */
export async function loadModel(dir: string, opts?: RuntimeOptions): Promise<PaliGemmaRuntime> {
  await initOrtForNode();
  if (opts?.decode === "kernel" || opts?.vision === "kernel") await initKernelForNode();
  return PaliGemmaRuntime.load(folderStore(dir), opts);
}
