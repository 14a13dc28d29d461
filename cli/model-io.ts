/** Loading what the CLI's model commands share: the runtime, its tokenizer and an image's pixel values. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { preprocessImage } from "../shared/image/index.ts";
import { provideImageCodecsForNode } from "../shared/image/codecs-node.ts";
import type { Engine } from "../shared/engine/engine.ts";
import { PaliGemmaTokenizer } from "../shared/text/tokenizer.ts";
import { readF32 } from "./io.ts";
import { folderStore } from "./node-runtime.ts";
import { basename, resolve } from "node:path";

/** The backend of a phase: the flag's value, else the kernel with --adapter (adapters run there only), else ort. */
export function phaseEngine(value: string | undefined, adapter: string | undefined): string {
  return value ?? (adapter ? "kernel" : "ort");
}

/** Adds the adapter folder `dir` (convert-adapter's output) to the model; its name, or null without one. */
export async function adapterFrom(model: Engine, dir: string | undefined): Promise<string | null> {
  if (dir === undefined) return null;
  const name = basename(resolve(dir));
  await model.adapters.add(name, folderStore(dir));
  return name;
}

/** Default pixel limit for CLI images (the server's is configurable). */
export const CLI_MAX_PIXELS = 50_000_000;

export function loadTokenizer(modelDir: string, model: Engine): PaliGemmaTokenizer | null {
  const t = model.manifest.tokenizer;
  if (!t) return null;
  const json = JSON.parse(readFileSync(join(modelDir, t.file), "utf8"));
  const cfg = t.configFile ? JSON.parse(readFileSync(join(modelDir, t.configFile), "utf8")) : undefined;
  return PaliGemmaTokenizer.fromJson(json, cfg);
}

/** Pixel values float32[1,3,S,S] from --pixel-values or --image (exactly one). */
export async function pixelsFrom(model: Engine, opts: { pixelValues?: string; image?: string }): Promise<Float32Array> {
  if (!!opts.pixelValues === !!opts.image) throw new Error("give exactly one of --pixel-values and --image");
  if (opts.pixelValues) return readF32(opts.pixelValues);
  await provideImageCodecsForNode();
  return preprocessImage(new Uint8Array(readFileSync(opts.image!)), model.manifest.preprocess, { maxPixels: CLI_MAX_PIXELS });
}
