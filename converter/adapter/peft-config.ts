/**
 * A PEFT LoRA `adapter_config.json`, read once into typed settings (PEFT's `LoraConfig`, peft/tuners/lora/config.py):
 *   r, lora_alpha                 rank and alpha; scale = alpha / r (`use_rslora`: alpha / sqrt(r))
 *   target_modules                a list of module-name suffixes (a module matches when its name is one of them
 *                                 or ends with "." + one), or one string: a regular expression the whole module
 *                                 name must match (Python's re.fullmatch); "all-linear" is every linear layer
 *   rank_pattern, alpha_pattern   {regex: value} overriding r / alpha for the modules whose name ends with a
 *                                 match of the regex (PEFT's get_pattern_key: re.match(rf"(.*\.)?({key})$", name))
 *   fan_in_fan_out                the base weights are stored [in, out] (GPT-2 Conv1D); lora_A / lora_B keep
 *                                 their Linear shapes, so this only tells the converter to accept transposed ones
 * Options this runtime cannot honour are errors naming the field: use_dora, modules_to_save, a bias other than
 * "none", another peft_type.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ModelFormatError } from "../../shared/errors.ts";

/** The settings of one adapter. */
export interface LoraSettings {
  readonly r: number;
  readonly alpha: number;
  readonly rslora: boolean;
  readonly fanInFanOut: boolean;
  /** As written in the config (recorded in the adapter manifest). */
  readonly targetModules: readonly string[] | string;
  /** Whether the module named `name` is targeted. */
  targets(name: string): boolean;
  /** Rank, alpha and scale of module `name` (rank_pattern / alpha_pattern applied). */
  of(name: string): { rank: number; alpha: number; scale: number };
}

const FILE = "adapter_config.json";

/** Reads `<dir>/adapter_config.json`. */
export function readLoraSettings(dir: string): LoraSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dir, FILE), "utf8"));
  } catch (err) {
    throw new ModelFormatError(`${join(dir, FILE)}: cannot read it as JSON (${(err as Error).message})`);
  }
  return loraSettings(raw);
}

/** Typed settings from a parsed adapter_config.json; throws ModelFormatError naming the field. */
export function loraSettings(raw: unknown): LoraSettings {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ModelFormatError(`${FILE} must be a JSON object`);
  const c = raw as Record<string, unknown>;
  const bad = (field: string, why: string) => new ModelFormatError(`${FILE}: ${field} ${why}`);
  const peftType = c.peft_type ?? "LORA";
  if (peftType !== "LORA") throw bad("peft_type", `is ${JSON.stringify(peftType)}: only LORA adapters are supported`);
  if (c.use_dora === true) throw bad("use_dora", "is true: DoRA adapters (a learned magnitude per output) are not supported");
  if (c.modules_to_save != null && !(Array.isArray(c.modules_to_save) && c.modules_to_save.length === 0)) {
    throw bad("modules_to_save", `is ${JSON.stringify(c.modules_to_save)}: fully trained module copies are not supported, only LoRA factors`);
  }
  if (c.bias !== undefined && c.bias !== "none") throw bad("bias", `is ${JSON.stringify(c.bias)}: trained biases are not supported (only "none")`);
  const r = c.r ?? 8;
  if (!Number.isInteger(r) || (r as number) < 1) throw bad("r", `must be a positive integer, got ${JSON.stringify(c.r)}`);
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw bad("lora_alpha", `must be a number, got ${JSON.stringify(c.lora_alpha)}`);
  const rslora = c.use_rslora ?? false;
  if (typeof rslora !== "boolean") throw bad("use_rslora", "must be true or false");
  const fanInFanOut = c.fan_in_fan_out ?? false;
  if (typeof fanInFanOut !== "boolean") throw bad("fan_in_fan_out", "must be true or false");
  const targetModules = targetsOf(c.target_modules);
  const targets = matcher(targetModules);
  const ranks = patterns(c.rank_pattern, "rank_pattern", (v) => Number.isInteger(v) && (v as number) > 0);
  const alphas = patterns(c.alpha_pattern, "alpha_pattern", (v) => typeof v === "number" && Number.isFinite(v));
  return Object.freeze({
    r: r as number,
    alpha,
    rslora,
    fanInFanOut,
    targetModules,
    targets,
    of(name: string) {
      const rank = ranks.find(([re]) => re.test(name))?.[1] ?? (r as number);
      const a = alphas.find(([re]) => re.test(name))?.[1] ?? alpha;
      return { rank, alpha: a, scale: rslora ? a / Math.sqrt(rank) : a / rank };
    },
  });
}

function targetsOf(v: unknown): readonly string[] | string {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string")) return Object.freeze([...v]);
  throw new ModelFormatError(`${FILE}: target_modules must be a list of module names or a regular expression, got ${JSON.stringify(v)}`);
}

/** PEFT's check_target_module_exists: a regex string is fully matched; a list matches names or "." suffixes. */
function matcher(t: readonly string[] | string): (name: string) => boolean {
  if (t === "all-linear") return () => true; // PEFT's shorthand: every linear layer but the output head (refused by name later)
  if (typeof t === "string") {
    const re = pythonRegex(`^(?:${t})$`, "target_modules");
    return (name) => re.test(name);
  }
  return (name) => t.some((s) => name === s || name.endsWith(`.${s}`));
}

/** {regex: value} → [RegExp matching a name ending in a match of the regex, value][] (in the config's order). */
function patterns(v: unknown, field: string, ok: (x: unknown) => boolean): [RegExp, number][] {
  if (v === undefined || v === null) return [];
  if (typeof v !== "object" || Array.isArray(v)) throw new ModelFormatError(`${FILE}: ${field} must be an object of {pattern: value}`);
  return Object.entries(v as Record<string, unknown>).map(([key, value]) => {
    if (!ok(value)) throw new ModelFormatError(`${FILE}: ${field}.${key} has an invalid value ${JSON.stringify(value)}`);
    return [pythonRegex(`^(?:.*\\.)?(?:${key})$`, `${field}.${key}`), value as number];
  });
}

/** A Python `re` pattern as a JavaScript RegExp (named groups `(?P<x>…)` / `(?P=x)` translated). */
function pythonRegex(source: string, field: string): RegExp {
  const js = source.replace(/\(\?P</g, "(?<").replace(/\(\?P=(\w+)\)/g, "\\k<$1>");
  try {
    return new RegExp(js, "u");
  } catch (err) {
    throw new ModelFormatError(`${FILE}: ${field} is not a regular expression this converter can read (${(err as Error).message})`);
  }
}
