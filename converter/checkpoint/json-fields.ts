/**
 * Typed, validated access to one object of a parsed JSON config. Absent keys take the caller's default;
 * present keys must have the right type, and every error names the full field path (`text_config.head_dim`).
 */
import { ModelFormatError } from "../../shared/errors.ts";

/** A JSON object plus the path that names it in error messages. */
export class JsonFields {
  private constructor(
    private readonly obj: Readonly<Record<string, unknown>>,
    /** Dotted path of this object ("" for the top level, "text_config." below it). */
    readonly prefix: string,
  ) {}

  /** Wraps `raw`, which must be a JSON object; `what` names it in the error otherwise. */
  static of(raw: unknown, what: string, prefix = ""): JsonFields {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new ModelFormatError(`${what} must be a JSON object, got ${describe(raw)}`);
    }
    return new JsonFields(raw as Record<string, unknown>, prefix);
  }

  /** Full path of `key` for messages. */
  path(key: string): string {
    return this.prefix + key;
  }

  /** True when `key` is present (null counts as present). */
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, key) && this.obj[key] !== undefined;
  }

  /** The raw value of `key` (undefined when absent). */
  raw(key: string): unknown {
    return this.has(key) ? this.obj[key] : undefined;
  }

  /** The value of `key`, or `fallback` when absent; null stays null (it is not "absent"). */
  private value<T>(key: string, fallback: T): unknown {
    return this.has(key) ? this.obj[key] : fallback;
  }

  /** The nested object `key`, or null when it is absent or null. */
  child(key: string): JsonFields | null {
    const v = this.raw(key);
    if (v === undefined || v === null) return null;
    return JsonFields.of(v, this.path(key), `${this.path(key)}.`);
  }

  /** A positive integer. */
  posInt(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw this.bad(key, "a positive integer");
    return v;
  }

  /** A non-negative integer (token ids). */
  index(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw this.bad(key, "a non-negative integer");
    return v;
  }

  /** A finite number > 0. */
  posNumber(key: string, fallback: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw this.bad(key, "a finite number > 0");
    return v;
  }

  /** A finite number > 0, or null (off); 0 also means off. Absent → `fallback`. */
  optionalCap(key: string, fallback: number | null): number | null {
    const v = this.value(key, fallback);
    if (v === null || v === 0) return null;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw this.bad(key, "a finite number >= 0 or null");
    return v;
  }

  /** A positive integer or null. Absent → `fallback`. */
  optionalPosInt(key: string, fallback: number | null): number | null {
    const v = this.value(key, fallback);
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw this.bad(key, "a positive integer or null");
    return v;
  }

  /** A string. */
  string(key: string, fallback: string): string {
    const v = this.value(key, fallback);
    if (typeof v !== "string") throw this.bad(key, "a string");
    return v;
  }

  /** A string or null. Absent → `fallback`. */
  optionalString(key: string, fallback: string | null): string | null {
    const v = this.value(key, fallback);
    if (v !== null && typeof v !== "string") throw this.bad(key, "a string or null");
    return v;
  }

  /** A boolean. */
  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== "boolean") throw this.bad(key, "true or false");
    return v;
  }

  /** A ModelFormatError saying `key` must be `expected`, with the value found. */
  bad(key: string, expected: string): ModelFormatError {
    return new ModelFormatError(`${this.path(key)} must be ${expected}, got ${describe(this.raw(key))}`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
