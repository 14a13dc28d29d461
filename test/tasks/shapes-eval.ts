/** Where the paligemma-shapes eval set lives (`../shared/models/paligemma-shapes/eval/`) and its loaded form. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadEvalSet, type LoadedEvalSet } from "../../scripts/eval/cases.ts";
import { SHAPES_MODEL } from "../helpers/golden.ts";

/** The shapes eval folder (cases.json and the 24 PNGs). */
export const SHAPES_EVAL_DIR = join(SHAPES_MODEL, "eval");

/** Loads the shapes eval set; a missing set fails (it does not skip). */
export async function loadShapesEval(): Promise<LoadedEvalSet> {
  if (!existsSync(SHAPES_EVAL_DIR)) throw new Error(`the shapes eval set is missing: ${SHAPES_EVAL_DIR}`);
  return loadEvalSet(SHAPES_EVAL_DIR);
}
