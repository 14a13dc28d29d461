/**
 * Models the LoRA tests share, made once per test file in a temporary folder: the committed shapes model with
 * the golden adapter (`shapes-lora-a`) and the synthetic one (`b`, test/helpers/lora-fixtures.ts) converted into
 * it, and each adapter's merged checkpoint converted on its own (fp32), the reference the adapter must match.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { convert } from "../../converter/convert.ts";
import { REPO, SHARED, SHAPES_MODEL } from "../helpers/golden.ts";
import { syntheticModules, writeMerged, writeSyntheticAdapter } from "../helpers/lora-fixtures.ts";

/** The golden PEFT adapter and its merged checkpoint. */
export const GOLDEN_LORA = join(SHARED, "golden-lora/shapes-lora-a");

export interface LoraModels {
  readonly work: string;
  /** The base model with adapters `shapes-lora-a` and `b`. */
  readonly base: string;
  /** Each adapter's merged model, converted on its own. */
  readonly merged: { readonly "shapes-lora-a": string; readonly b: string };
  /** The synthetic adapter's PEFT folder. */
  readonly peftB: string;
}

/** Prepares the models (about 2 s). */
export async function prepareLoraModels(prefix = "pg-lora-"): Promise<LoraModels> {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const base = join(work, "paligemma-shapes");
  cpSync(join(REPO, "model-shards/paligemma-shapes"), base, { recursive: true, filter: (p) => !p.includes("/adapters") });
  await convertAdapter(GOLDEN_LORA, join(base, "adapters/shapes-lora-a"));
  const peftB = join(work, "peft-b");
  const modules = syntheticModules();
  writeSyntheticAdapter(peftB, modules);
  await convertAdapter(peftB, join(base, "adapters/b"));
  const mergedA = join(work, "merged-a");
  await convert(join(GOLDEN_LORA, "merged"), mergedA, { dtype: "fp32", id: "paligemma-shapes" });
  await writeMerged(SHAPES_MODEL, modules, join(work, "merged-b-hf"));
  const mergedB = join(work, "merged-b");
  await convert(join(work, "merged-b-hf"), mergedB, { dtype: "fp32", id: "paligemma-shapes" });
  return { work, base, merged: { "shapes-lora-a": mergedA, b: mergedB }, peftB };
}

/** Eval prompts of the shapes model (image file in its eval folder, prefix). */
export const EVAL_PROMPTS: readonly (readonly [string, string])[] = [
  ["img_001_160x120.png", "detect circle"],
  ["img_000_96x96.png", "caption en"],
  ["img_005_160x120.png", "caption en"],
  ["img_002_200x200.png", "answer en how many shapes"],
  ["img_003_77x133.png", "answer en what color is the square"],
];
