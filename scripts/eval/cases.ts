/**
 * The eval set format (the paligemma-shapes `eval/cases.json`):
 *
 *   {"images": [{"image": "img_000_96x96.png", "width": 96, "height": 96, "objects": [{"shape", "color", "box"}]}],
 *    "cases":  [{"image": "img_000_96x96.png", "kind": "detect", "prefix": "detect circle",
 *                "expected": "<loc0554>… circle", "answer": "<loc0512>… circle",
 *                "gt_boxes": [{"label": "circle", "x1": 10, "y1": 52, "x2": 41, "y2": 83}]}],
 *    "metrics": {"caption": {"cases": 24, "exact_match": 0.7917}, "detect": {…}}}
 *
 * Image paths are relative to the cases file (or absolute). `answer` (the reference model's answer) and `metrics` (its
 * scores) are optional; when present the eval reports agreement with them. Other fields are ignored.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { z } from "zod";

const box = { x1: z.number(), y1: z.number(), x2: z.number(), y2: z.number() };

const imageSchema = z.object({
  image: z.string().min(1),
  width: z.int().positive(),
  height: z.int().positive(),
});

const caseSchema = z.object({
  image: z.string().min(1),
  kind: z.string().min(1),
  prefix: z.string().min(1),
  expected: z.string(),
  answer: z.string().optional(),
  gt_boxes: z.array(z.object({ label: z.string(), ...box })).optional(),
});

/** Zod schema of a cases file. */
export const evalSetSchema = z
  .object({
    images: z.array(imageSchema).min(1),
    cases: z.array(caseSchema).min(1),
    metrics: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((set, ctx) => {
    const names = new Set(set.images.map((i) => i.image));
    set.cases.forEach((c, i) => {
      if (!names.has(c.image)) ctx.addIssue({ code: "custom", path: ["cases", i, "image"], message: `unknown image ${c.image}` });
      if (c.kind === "detect" && c.gt_boxes === undefined) {
        ctx.addIssue({ code: "custom", path: ["cases", i, "gt_boxes"], message: "a detect case needs gt_boxes" });
      }
    });
  });

/** A parsed cases file. */
export type EvalSet = z.output<typeof evalSetSchema>;
/** One case of an eval set. */
export type EvalCase = EvalSet["cases"][number];
/** One image of an eval set. */
export type EvalImage = EvalSet["images"][number];

/** A loaded eval set: the parsed file and the folder its image paths are relative to. */
export interface LoadedEvalSet {
  readonly set: EvalSet;
  readonly dir: string;
  readonly file: string;
}

/**
 * Reads and validates a cases file. `path` may be the file or the folder holding `cases.json`.
 * @throws Error naming the file and the first problem
 */
export async function loadEvalSet(path: string): Promise<LoadedEvalSet> {
  const file = path.endsWith(".json") ? resolve(path) : resolve(path, "cases.json");
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new Error(`cannot read eval set ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = evalSetSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  return { set: parsed.data, dir: dirname(file), file };
}

/** The reference model's exact-match score and detection metrics recorded in the set, by kind (if any). */
export function referenceMetrics(set: EvalSet): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [kind, value] of Object.entries(set.metrics ?? {})) {
    if (typeof value !== "object" || value === null) continue;
    const numbers = Object.entries(value).filter((e): e is [string, number] => typeof e[1] === "number");
    if (numbers.length > 0) out[kind] = Object.fromEntries(numbers);
  }
  return out;
}
