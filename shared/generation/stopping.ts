/**
 * Stopping criteria for one generation: an eos id, a token limit, or a stop string in the text.
 *
 * Call `check` once per generated token, with the detokenized text so far (which only grows). On a stop string
 * the text is cut before it, as OpenAI does; the stop string itself is never returned. While streaming, hold back
 * the last `holdBack(text)` characters: they could be the start of a stop string, and a client must never see
 * part of one.
 */
import { InputError } from "../errors.ts";

/** Why generation ended (OpenAI maps "eos" and "stop" to finish_reason "stop"). */
export type StopReason = "eos" | "length" | "stop";

/** The outcome of one `check`. */
export interface StopCheck {
  readonly stop: boolean;
  readonly reason?: StopReason;
  /** When stopping: the final text (cut before the stop string when reason is "stop"). */
  readonly trimmedText?: string;
}

/** What ends a generation. */
export interface StopOptions {
  /** Token ids that end generation (e.g. `<eos>`); they contribute no text. */
  readonly eos: readonly number[];
  /** Maximum number of generated tokens (eos included), ≥ 1. */
  readonly maxTokens: number;
  /** Strings that end generation; each non-empty. */
  readonly stop?: readonly string[];
}

/**
 * The number of trailing characters of `text` that are a proper prefix of some stop string, i.e. must not be
 * streamed yet. 0 when no stop string could start in the tail.
 */
export function holdBackLength(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(s.slice(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

/**
 * The index of the earliest occurrence in `text` of any stop string that ends after `from`, or -1.
 * Matches starting earlier win; among matches at the same index the result is the same, so the order of
 * `stops` does not matter.
 */
export function findStop(text: string, stops: readonly string[], from = 0): number {
  let best = -1;
  for (const s of stops) {
    const at = text.indexOf(s, Math.max(0, from - s.length + 1));
    if (at >= 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

/** Stateful per request: counts tokens and remembers how much text it has searched. */
export class StopCriteria {
  private readonly eos: ReadonlySet<number>;
  private readonly stops: readonly string[];
  private readonly maxTokens: number;
  private generated = 0;
  private searched = 0; // text length at the previous check: earlier text holds no stop string

  /** Throws InputError("unprocessable", …, "max_tokens" | "stop") for an invalid limit or stop string. */
  constructor(options: StopOptions) {
    if (!Number.isSafeInteger(options.maxTokens) || options.maxTokens < 1) {
      throw new InputError("unprocessable", `max_tokens must be an integer ≥ 1, got ${options.maxTokens}`, "max_tokens");
    }
    const stops = options.stop ?? [];
    for (const s of stops) {
      if (typeof s !== "string" || s.length === 0) {
        throw new InputError("unprocessable", "stop strings must be non-empty strings", "stop");
      }
    }
    this.eos = new Set(options.eos);
    this.stops = Object.freeze([...stops]);
    this.maxTokens = options.maxTokens;
  }

  /** Tokens checked so far. */
  get count(): number {
    return this.generated;
  }

  /**
   * Records one generated token and says whether to stop. `textSoFar` is all text decoded so far, including
   * this token's. Precedence: eos, then a stop string, then the token limit.
   */
  check(id: number, textSoFar: string): StopCheck {
    this.generated++;
    if (this.eos.has(id)) return { stop: true, reason: "eos", trimmedText: textSoFar };
    if (this.stops.length > 0) {
      const at = findStop(textSoFar, this.stops, this.searched);
      this.searched = textSoFar.length;
      if (at >= 0) return { stop: true, reason: "stop", trimmedText: textSoFar.slice(0, at) };
    }
    if (this.generated >= this.maxTokens) return { stop: true, reason: "length", trimmedText: textSoFar };
    return { stop: false };
  }

  /** How many trailing characters of `textSoFar` to hold back from the stream (see `holdBackLength`). */
  holdBack(textSoFar: string): number {
    return holdBackLength(textSoFar, this.stops);
  }
}
