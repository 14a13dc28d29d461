/**
 * Which model a request asks for: the base (`<base>`, or no `model`), or one of its LoRA adapters, named
 * `<base>:<name>` in `model` (both APIs; as vLLM names LoRA modules) or by `adapter` on the native API. Also
 * the model list `GET /v1/models` shows: the base, then each adapter with `"parent": "<base>"`.
 */
import type { AdapterListing } from "../model/adapter-manifest.ts";
import { echo, InputError } from "../errors.ts";

/** What a request runs on. */
export interface ModelChoice {
  /** The public id: `<base>` or `<base>:<adapter>`. */
  readonly id: string;
  /** The adapter's name; null for the base. */
  readonly adapter: string | null;
  /** Whether the adapter changes the vision tower (its images get their own soft tokens). */
  readonly vision: boolean;
}

/** The public id of adapter `name` of model `base`. */
export function adapterModelId(base: string, name: string): string {
  return `${base}:${name}`;
}

/**
 * Resolves `model` / `adapter` against the base id and its adapters.
 * @throws InputError 404 naming an unknown model or adapter; 400 when `model` and `adapter` disagree
 */
export function chooseModel(base: string, adapters: readonly AdapterListing[], model?: string, adapter?: string): ModelChoice {
  const ids = [base, ...adapters.map((a) => adapterModelId(base, a.name))].map((id) => `"${id}"`).join(", ");
  let name: string | null = adapter ?? null;
  let param = "adapter";
  if (model !== undefined && model !== base) {
    if (!model.startsWith(`${base}:`)) throw new InputError("not_found", `model ${echo(model)} is not served here; GET /v1/models lists ${ids}`, "model", "model_not_found");
    const named = model.slice(base.length + 1);
    if (name !== null && name !== named) throw new InputError("invalid_request", `model names adapter ${echo(named)} but adapter is ${echo(name)}`, "adapter");
    ((name = named), (param = "model"));
  }
  if (name === null) return { id: base, adapter: null, vision: false };
  const found = adapters.find((a) => a.name === name);
  if (!found) throw new InputError("not_found", `adapter ${echo(name)} of model ${base} is not served here; GET /v1/models lists ${ids}`, param, "model_not_found");
  return { id: adapterModelId(base, name), adapter: name, vision: found.vision };
}

/** `GET /v1/models`: the base and each adapter (its parent, the bytes of its factors). */
export function modelEntries(base: string, adapters: readonly AdapterListing[]) {
  return [
    { id: base, created: 0 },
    ...adapters.map((a) => ({ id: adapterModelId(base, a.name), created: 0, parent: base, adapter: { name: a.name, factor_bytes: a.factorBytes, vision: a.vision } })),
  ];
}
