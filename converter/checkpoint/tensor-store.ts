/**
 * All the safetensors weights of one Hugging Face checkpoint folder, single-file or sharded.
 *
 * Resolution follows transformers' `from_pretrained`: `model.safetensors` if present, otherwise
 * `model.safetensors.index.json`, whose `weight_map` names the shard of every tensor.
 */
import { access, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { ModelFormatError } from "../../shared/errors.ts";
import { SafetensorsFile, type TensorEntry } from "./safetensors.ts";

/** Single-file weights (transformers SAFE_WEIGHTS_NAME). */
export const SINGLE_FILE = "model.safetensors";
/** Shard index (transformers SAFE_WEIGHTS_INDEX_NAME). */
export const INDEX_FILE = "model.safetensors.index.json";

/** One tensor and the file that holds it. */
export interface TensorLocation {
  readonly file: SafetensorsFile;
  readonly entry: TensorEntry;
}

/** Every tensor of a checkpoint folder, located; data is read on demand. */
export class TensorStore {
  private constructor(
    /** The weight files in use (one, or every shard the index names). */
    readonly files: readonly SafetensorsFile[],
    private readonly byName: ReadonlyMap<string, TensorLocation>,
  ) {}

  /** Opens the weights of `dir`; throws ModelFormatError naming the file at fault. */
  static async open(dir: string): Promise<TensorStore> {
    const single = join(dir, SINGLE_FILE);
    if (await exists(single)) {
      const file = await SafetensorsFile.open(single);
      const byName = new Map([...file.tensors].map(([name, entry]) => [name, { file, entry }]));
      return new TensorStore([file], byName);
    }
    const indexPath = join(dir, INDEX_FILE);
    if (!(await exists(indexPath))) {
      throw new ModelFormatError(`${dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} is present`);
    }
    const weightMap = parseIndex(indexPath, await readFile(indexPath, "utf8"));
    const shards = new Map<string, SafetensorsFile>();
    for (const shard of new Set(weightMap.values())) {
      const path = join(dir, shard);
      if (!(await exists(path))) {
        const example = [...weightMap].find(([, s]) => s === shard)?.[0];
        throw new ModelFormatError(`${indexPath}: maps ${example} to shard ${shard}, which does not exist (${path})`);
      }
      shards.set(shard, await SafetensorsFile.open(path));
    }
    const byName = new Map<string, TensorLocation>();
    for (const [name, shard] of weightMap) {
      const file = shards.get(shard)!;
      const entry = file.tensors.get(name);
      if (entry === undefined) {
        throw new ModelFormatError(`${indexPath}: tensor ${name} is mapped to ${file.path}, which does not contain it`);
      }
      byName.set(name, { file, entry });
    }
    for (const [shard, file] of shards) {
      for (const name of file.tensors.keys()) {
        if (weightMap.get(name) !== shard) {
          throw new ModelFormatError(`${file.path}: tensor ${name} is not mapped to this shard by ${indexPath}`);
        }
      }
    }
    return new TensorStore([...shards.values()], byName);
  }

  /** Tensor names, sorted. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** Whether tensor `name` exists. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Where tensor `name` lives; throws ModelFormatError for an unknown name. */
  locate(name: string): TensorLocation {
    const loc = this.byName.get(name);
    if (loc === undefined) throw new ModelFormatError(`checkpoint has no tensor named ${name}`);
    return loc;
  }

  /** Tensor `name` decoded to float32. */
  read(name: string): Promise<Float32Array<ArrayBuffer>> {
    return this.locate(name).file.read(name);
  }
}

/** Parses the index's `weight_map` (tensor → shard file name); shard names must be plain file names. */
function parseIndex(path: string, text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== "object" || Array.isArray(weightMap)) {
    throw new ModelFormatError(`${path}: weight_map is missing or not an object`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard === "" || basename(shard) !== shard || shard === "." || shard === "..") {
      throw new ModelFormatError(`${path}: weight_map.${name} = ${JSON.stringify(shard)} is not a file name`);
    }
    out.set(name, shard);
  }
  if (out.size === 0) throw new ModelFormatError(`${path}: weight_map is empty`);
  return out;
}

/** Whether a file exists (and is accessible). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
