/**
 * The segmentation-mask commands:
 *   convert-vae <vae.npz> <model_dir>                     big_vision's vae-oid.npz → the model folder (manifest.vae)
 *   vae-decode <vae.npz> --codes c0,…,c15 --out mask.f32  the raw decoder output float32[64, 64], little-endian,
 *                                                         row-major, no header (the format of golden-vqvae/masks.bin)
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { convertVae, VAE_FILE } from "../../converter/vae.ts";
import { decodeMask, vaeFromNpz, VAE_CODES_PER_MASK } from "../../shared/masks/index.ts";
import { writeF32 } from "../io.ts";

/** "1, 2,3" → 16 integers (the codes of 16 `<segNNN>` tokens, in token order). */
function parseCodes(list: string): number[] {
  const codes = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (codes.length !== VAE_CODES_PER_MASK || codes.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new Error(`--codes must be ${VAE_CODES_PER_MASK} comma-separated non-negative integers (the <segNNN> values in token order), got "${list}"`);
  }
  return codes;
}

export function registerVae(program: Command): void {
  program
    .command("convert-vae")
    .description("add big_vision's VQ-VAE mask decoder (vae-oid.npz) to a converted model, so segment answers get masks")
    .argument("<vae_npz>", "big_vision's vae-oid.npz (or any npz with its key names)")
    .argument("<model_dir>", "converted model folder (manifest.json), e.g. model-shards/<name>")
    .action(async (npz: string, modelDir: string) => {
      const m = await convertVae(npz, modelDir);
      const bytes = m.files[VAE_FILE].bytes;
      process.stderr.write(`wrote ${modelDir}/${VAE_FILE} (${(bytes / 1e6).toFixed(2)} MB, codebook [${m.vae!.codes}, ${m.vae!.dim}]) and updated manifest.json\n`);
    });

  program
    .command("vae-decode")
    .description("decode 16 segmentation codes into the raw 64×64 mask (float32, before resize and threshold)")
    .argument("<vae_npz>", "big_vision's vae-oid.npz (or any npz with its key names)")
    .requiredOption("--codes <list>", "16 comma-separated codebook indices: the <segNNN> values in token order")
    .requiredOption("--out <file>", "output: float32[64, 64] little-endian, row-major (y from the top), no header")
    .action(async (npz: string, o: { codes: string; out: string }) => {
      const codes = parseCodes(o.codes);
      const weights = await vaeFromNpz(new Uint8Array(readFileSync(npz)), basename(npz));
      const started = performance.now();
      const mask = decodeMask(weights, codes);
      writeF32(o.out, mask);
      process.stderr.write(`wrote ${o.out}: float32[64, 64] (decoded in ${(performance.now() - started).toFixed(1)} ms)\n`);
    });
}
