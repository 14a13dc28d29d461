/**
 * `convert-vae`: big_vision's `vae-oid.npz` → `<model_dir>/vae-decoder.bin` (the 25 decoder tensors, float32,
 * every convolution repacked to [kh, kw, in, out], 64-byte aligned) and a `vae` entry in the model's
 * manifest.json (shared/model/manifest.ts). The encoder's arrays are not copied. Running it again replaces it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { vaeFromNpz } from "../shared/masks/index.ts";
import { packedTensors, VAE_MASK_SIZE } from "../shared/masks/vae-weights.ts";
import { parseManifest, type Manifest } from "../shared/model/manifest.ts";
import { sha256, WeightFile } from "./weight-file.ts";

/** The weight file's name inside the model folder. */
export const VAE_FILE = "vae-decoder.bin";

/**
 * Converts `npzPath` into `modelDir` (which must hold a converted model) and rewrites its manifest.
 * @returns the updated, validated manifest
 */
export async function convertVae(npzPath: string, modelDir: string): Promise<Manifest> {
  const manifestPath = join(modelDir, "manifest.json");
  const json = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, unknown> & {
    files: Manifest["files"];
    tensors: Manifest["tensors"];
    vae?: Manifest["vae"];
  };
  parseManifest(json); // the model folder must be valid before it is changed
  const npz = new Uint8Array(readFileSync(npzPath));
  const weights = await vaeFromNpz(npz, basename(npzPath));
  const file = new WeightFile(modelDir, VAE_FILE);
  for (const t of packedTensors(weights)) {
    file.append({ name: t.name, type: "FLOAT", dims: t.dims }, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  if (json.vae && json.vae.file !== VAE_FILE) {
    delete json.files[json.vae.file];
    delete json.tensors[json.vae.file];
  }
  json.files[VAE_FILE] = file.finish();
  json.tensors[VAE_FILE] = file.entries;
  json.vae = {
    file: VAE_FILE,
    layout: "hwio",
    codes: weights.codes,
    dim: weights.dim,
    maskSize: VAE_MASK_SIZE,
    source: { name: basename(npzPath), sha256: sha256(npz) },
  };
  const parsed = parseManifest(json);
  writeFileSync(manifestPath, JSON.stringify(json, null, 1) + "\n");
  return parsed;
}
