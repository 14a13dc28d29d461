/**
 * Checks that a checkpoint's tensors are exactly the ones its config calls for: no unknown or missing names,
 * every shape as expected, every dtype decodable.
 */
import { ModelFormatError } from "../../shared/errors.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { isFloatDtype } from "./dtypes.ts";
import { expectedTensorShapes, hfNames } from "./names.ts";

/** What the validator needs to know about one stored tensor. */
export interface StoredTensor {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly file: string; // the file holding it, for messages
}

/** How many names an error lists before summarising the rest. */
const LIST_LIMIT = 5;

/**
 * Throws ModelFormatError when `tensors` do not match `config`. `visionUseHead` permits (and ignores) the SigLIP
 * pooling-head weights; `language_model.lm_head.weight` is optional and must then have the embedding's shape.
 */
export function validateTensors(
  config: ModelConfig,
  visionUseHead: boolean,
  tensors: ReadonlyMap<string, StoredTensor>,
): void {
  const expected = expectedTensorShapes(config);
  expected.delete(hfNames.embedTokens); // checked on its own below, to name vocab_size
  const ignorable = (name: string) => visionUseHead && name.startsWith(hfNames.visionHeadPrefix);
  const unknown = [...tensors.keys()].filter(
    (n) => !expected.has(n) && n !== hfNames.embedTokens && n !== hfNames.lmHead && !ignorable(n),
  );
  const missing = [...expected.keys(), hfNames.embedTokens].filter((n) => !tensors.has(n));
  if (unknown.length > 0 || missing.length > 0) {
    const parts = [];
    if (unknown.length > 0) parts.push(`${unknown.length} unknown tensor(s): ${list(unknown.sort())}`);
    if (missing.length > 0) parts.push(`${missing.length} missing tensor(s): ${list(missing)}`);
    throw new ModelFormatError(`checkpoint does not match its config.json (${config.variant}): ${parts.join("; ")}`);
  }

  const embed = tensors.get(hfNames.embedTokens)!;
  const embedShape = [config.text.vocab, config.text.hidden];
  if (embed.shape.length === 2 && embed.shape[1] === config.text.hidden && embed.shape[0] !== config.text.vocab) {
    throw new ModelFormatError(
      `${hfNames.embedTokens} (${embed.file}) has ${embed.shape[0]} rows but text_config.vocab_size is ` +
        `${config.text.vocab}; the config and the weights disagree on the vocabulary size`,
    );
  }
  expected.set(hfNames.embedTokens, embedShape);
  if (tensors.has(hfNames.lmHead)) expected.set(hfNames.lmHead, embedShape);

  for (const [name, shape] of expected) {
    const t = tensors.get(name)!;
    if (!sameShape(t.shape, shape)) {
      throw new ModelFormatError(
        `tensor ${name} (${t.file}) has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
    if (!isFloatDtype(t.dtype)) {
      throw new ModelFormatError(`tensor ${name} (${t.file}) has dtype ${t.dtype}; only F32, F16 and BF16 are supported`);
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function list(names: string[]): string {
  const shown = names.slice(0, LIST_LIMIT).join(", ");
  return names.length > LIST_LIMIT ? `${shown}, ... (${names.length - LIST_LIMIT} more)` : shown;
}
