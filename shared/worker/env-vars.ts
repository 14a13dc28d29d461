/** Parsing wrangler vars: a var that is set but cannot be used is a deployment error, not something to guess around. */
import { ConfigError, echo } from "../errors.ts";

/**
 * Reads an integer var at least `min` (default 1), falling back to `fallback` when unset; throws ConfigError
 * on garbage (a deployment error, answered as a 500 that names the var).
 */
export function intVar(value: string | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${echo(value, 32)}`);
  return n;
}
