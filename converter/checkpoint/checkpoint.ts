/**
 * A Hugging Face PaliGemma / PaliGemma 2 checkpoint folder, opened and validated for conversion.
 *
 * `open` reads config.json, preprocessor_config.json and the safetensors headers only, then checks every tensor
 * name, shape and dtype against the config; weights are read one tensor at a time with `read`.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ModelFormatError } from "../../shared/errors.ts";
import type { ModelConfig } from "../../shared/model/config.ts";
import { isFloatDtype, type FloatDtype } from "./dtypes.ts";
import { parseHfConfigDetails } from "./hf-config.ts";
import { parsePreprocessorConfig, type PreprocessorConfig } from "./preprocessor.ts";
import { exists, TensorStore } from "./tensor-store.ts";
import { validateTensors, type StoredTensor } from "./validate.ts";

/** File names inside a checkpoint folder (transformers' CONFIG_NAME, IMAGE_PROCESSOR_NAME, tokenizer files). */
export const CHECKPOINT_FILES = Object.freeze({
  config: "config.json",
  preprocessor: "preprocessor_config.json",
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
});

/** An open, validated checkpoint. */
export class Checkpoint {
  private closed = false;

  private constructor(
    /** Absolute path of the checkpoint folder. */
    readonly dir: string,
    /** The typed, frozen model config. */
    readonly config: ModelConfig,
    /** Image preprocessing settings (from preprocessor_config.json, or SigLIP defaults at image_size). */
    readonly preprocessor: PreprocessorConfig,
    /** tokenizer.json's path, or null when the folder has none. */
    readonly tokenizerJsonPath: string | null,
    /** tokenizer_config.json's path, or null when the folder has none. */
    readonly tokenizerConfigPath: string | null,
    private readonly store: TensorStore,
  ) {}

  /** Opens and validates `dir`; throws ModelFormatError naming the file, field or tensor at fault. */
  static async open(dir: string): Promise<Checkpoint> {
    const root = resolve(dir);
    const configPath = join(root, CHECKPOINT_FILES.config);
    const rawConfig = await readJson(configPath);
    if (rawConfig === null) throw new ModelFormatError(`${configPath}: missing`);
    const { config, visionUseHead } = inFile(configPath, () => parseHfConfigDetails(rawConfig));

    const store = await TensorStore.open(root);
    const stored = new Map<string, StoredTensor>();
    for (const name of store.names()) {
      const { file, entry } = store.locate(name);
      stored.set(name, { shape: entry.shape, dtype: entry.dtype, file: file.path });
    }
    validateTensors(config, visionUseHead, stored);

    const preprocessorPath = join(root, CHECKPOINT_FILES.preprocessor);
    const rawPreprocessor = await readJson(preprocessorPath);
    const preprocessor = inFile(preprocessorPath, () => parsePreprocessorConfig(rawPreprocessor, config));

    const tokenizer = join(root, CHECKPOINT_FILES.tokenizer);
    const tokenizerConfig = join(root, CHECKPOINT_FILES.tokenizerConfig);
    return new Checkpoint(
      root,
      config,
      preprocessor,
      (await exists(tokenizer)) ? tokenizer : null,
      (await exists(tokenizerConfig)) ? tokenizerConfig : null,
      store,
    );
  }

  /** Every tensor name in the checkpoint, sorted. */
  tensorNames(): string[] {
    return this.store.names();
  }

  /** Shape of tensor `name` (a fresh array). */
  shape(name: string): number[] {
    return [...this.store.locate(name).entry.shape];
  }

  /** Stored dtype of tensor `name` (validated on open for every tensor the model uses). */
  dtype(name: string): FloatDtype {
    const { file, entry } = this.store.locate(name);
    if (!isFloatDtype(entry.dtype)) throw new ModelFormatError(`${file.path}: tensor ${name} has dtype ${entry.dtype}`);
    return entry.dtype;
  }

  /** Tensor `name` decoded to float32, row-major in its stored shape; read from disk on each call. */
  async read(name: string): Promise<Float32Array<ArrayBuffer>> {
    if (this.closed) throw new Error(`Checkpoint ${this.dir} is closed`);
    return this.store.read(name);
  }

  /** Marks the checkpoint closed; later reads throw. Files are opened per read, so nothing stays open. */
  close(): void {
    this.closed = true;
  }
}

/** Parsed JSON of `path`, or null when the file does not exist. */
async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ModelFormatError(`${path}: cannot read (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** Runs `parse`, prefixing any ModelFormatError with the file it concerns. */
function inFile<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ModelFormatError) throw new ModelFormatError(`${path}: ${err.message}`);
    throw err;
  }
}

