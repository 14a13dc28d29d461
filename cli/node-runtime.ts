/** Node-side wiring of the runtime: onnxruntime's WASM bytes from node_modules and a folder as model store. */
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { createRequire } from "node:module";
import { join } from "node:path";
import { configureOrt } from "../shared/engine/ort.ts";
import { initKernelForNode } from "../shared/kernel/node.ts";
import { Engine, type EngineOptions } from "../shared/engine/engine.ts";
import type { EngineBackends } from "../shared/engine/types.ts";
import type { ModelStore } from "../shared/engine/types.ts";

/** A model folder on disk as a ModelStore (weight files streamed in chunks). */
export function folderStore(dir: string): ModelStore {
  return {
    async stream(name) {
      try {
        await stat(join(dir, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw e;
      }
      return Readable.toWeb(createReadStream(join(dir, name), { highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>;
    },
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

/** Loads a converted model folder with the backends chosen per phase (the kernel module, or onnxruntime-web). */
export async function loadModel(dir: string, backends: EngineBackends, kernel?: EngineOptions["kernel"]): Promise<Engine> {
  await initOrtForNode(); // configures the WASM bytes; no onnxruntime instance exists until a phase uses it
  await initKernelForNode();
  return Engine.load(folderStore(dir), { backends, kernel });
}
