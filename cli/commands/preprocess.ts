import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { preprocessImage } from "../../shared/image/index.ts";
import { provideImageCodecsForNode } from "../../shared/image/codecs-node.ts";
import { parseManifest } from "../../shared/model/manifest.ts";
import { writeF32 } from "../io.ts";
import { CLI_MAX_PIXELS } from "../model-io.ts";

export function registerPreprocess(program: Command): void {
  program
    .command("preprocess")
    .description("decode and preprocess an image as the model expects it: float32[1,3,S,S] little-endian")
    .argument("<model_dir>", "converted model folder (manifest.json)")
    .requiredOption("--image <file>", "PNG, JPEG, WebP or GIF image")
    .requiredOption("--out <file>", "output .f32 file")
    .action(async (modelDir: string, o: { image: string; out: string }) => {
      const manifest = parseManifest(JSON.parse(readFileSync(join(modelDir, "manifest.json"), "utf8")));
      await provideImageCodecsForNode();
      const pixels = await preprocessImage(new Uint8Array(readFileSync(o.image)), manifest.preprocess, { maxPixels: CLI_MAX_PIXELS });
      writeF32(o.out, pixels);
      process.stderr.write(`wrote ${o.out}: float32[1, 3, ${manifest.preprocess.size}, ${manifest.preprocess.size}]\n`);
    });
}
