/**
 * `preprocessor_config.json` (SiglipImageProcessor, as PaliGemmaProcessor uses it) → the image settings.
 *
 * Defaults are SiglipImageProcessor's in transformers v4.47 (models/siglip/image_processing_siglip.py):
 * resize to 224×224 with BICUBIC, rescale 1/255, normalise with IMAGENET_STANDARD_MEAN/STD = 0.5.
 * With no file at all the size is the vision tower's image_size.
 */
import { ModelFormatError } from "../../shared/errors.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { JsonFields } from "./json-fields.ts";

/** How an image becomes `float32[1, 3, S, S]`: resize to size×size, × rescale, then (x − mean) / std. */
export interface PreprocessorConfig {
  readonly size: number; // S
  readonly rescale: number;
  readonly mean: readonly [number, number, number]; // per RGB channel
  readonly std: readonly [number, number, number];
  readonly resample: "bicubic";
}

/** PIL.Image.BICUBIC (PILImageResampling.BICUBIC). */
const PIL_BICUBIC = 3;
const HALF: readonly [number, number, number] = [0.5, 0.5, 0.5];

/**
 * Parses `raw` (the JSON of preprocessor_config.json, or null when there is none) for `config`.
 * Throws ModelFormatError naming the field when it is invalid or does not fit the vision tower.
 */
export function parsePreprocessorConfig(raw: unknown, config: ModelConfig): PreprocessorConfig {
  const imageSize = config.vision.imageSize;
  if (raw === null) {
    return Object.freeze({ size: imageSize, rescale: 1 / 255, mean: HALF, std: HALF, resample: "bicubic" });
  }
  const f = JsonFields.of(raw, "preprocessor_config.json");
  const type = f.optionalString("image_processor_type", null);
  if (type !== null && !type.startsWith("SiglipImageProcessor")) {
    throw new ModelFormatError(`unsupported image_processor_type ${JSON.stringify(type)} (expected SiglipImageProcessor)`);
  }
  if (!f.bool("do_resize", true)) throw f.bad("do_resize", "true (the vision tower needs a fixed size)");
  const sizeObj = f.child("size") ?? JsonFields.of({ height: 224, width: 224 }, "size", "size.");
  const height = sizeObj.posInt("height", 0);
  const width = sizeObj.posInt("width", 0);
  if (height !== width) throw new ModelFormatError(`size.height ${height} must equal size.width ${width}`);
  if (height !== imageSize) {
    throw new ModelFormatError(`size.height ${height} must equal vision_config.image_size ${imageSize}`);
  }
  const resample = f.raw("resample") ?? PIL_BICUBIC;
  if (resample !== PIL_BICUBIC) throw f.bad("resample", `${PIL_BICUBIC} (bicubic)`);
  if (f.has("image_seq_length") && f.posInt("image_seq_length", 0) !== config.imageTokens) {
    throw f.bad("image_seq_length", `${config.imageTokens} (the model's image tokens)`);
  }
  const rescale = f.bool("do_rescale", true) ? f.posNumber("rescale_factor", 1 / 255) : 1;
  const normalize = f.bool("do_normalize", true);
  return Object.freeze({
    size: height,
    rescale,
    mean: normalize ? triple(f, "image_mean", false) : ([0, 0, 0] as const),
    std: normalize ? triple(f, "image_std", true) : ([1, 1, 1] as const),
    resample: "bicubic",
  });
}

/** A per-channel triple: one number (broadcast) or a list of 3; absent → 0.5 each. */
function triple(f: JsonFields, key: string, positive: boolean): readonly [number, number, number] {
  const v = f.raw(key) ?? HALF;
  const list = typeof v === "number" ? [v, v, v] : v;
  const ok = (x: unknown) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0);
  if (!Array.isArray(list) || list.length !== 3 || !list.every(ok)) {
    throw f.bad(key, positive ? "3 finite numbers > 0" : "3 finite numbers");
  }
  return Object.freeze([list[0], list[1], list[2]] as [number, number, number]);
}
