import { Option, type Command } from "commander";
import { convert } from "../../converter/convert.ts";
import { convertVae } from "../../converter/vae.ts";
import { WEIGHT_DTYPES, type WeightDtype } from "../../shared/model/weights.ts";
import { DEFAULT_STAGE_BUDGET as D } from "../../shared/model/stage-memory.ts";

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description("convert a Hugging Face PaliGemma checkpoint folder into model-shards (ONNX graphs + weights + manifest)")
    .argument("<hf_dir>", "folder with config.json, *.safetensors and optionally tokenizer.json")
    .argument("<out_dir>", "output folder, e.g. model-shards/<name>")
    .option("--dtype <dtype>", `matrix weight format: ${WEIGHT_DTYPES.join(" | ")}`, "fp32")
    .option("--max-stage-mb <n>", "split into stages whose resident size (weights in memory, KV cache, scratch, code) stays under N MB (10^6 bytes)")
    .option("--stage-sessions <n>", "sessions whose KV caches a decoder stage holds (with --max-stage-mb)", String(D.sessions))
    .option("--stage-context <n>", "tokens of context per session (with --max-stage-mb)", String(D.context))
    .option("--stage-prefill-rows <n>", "rows one prefill call handles (with --max-stage-mb)", String(D.prefillRows))
    .option("--stage-adapter-mb <n>", "LoRA factors a vision/decoder stage keeps, its ADAPTER_CACHE_MB (with --max-stage-mb; 0: none)", String(D.adapterBytes / 1e6))
    .option("--max-shard-mb <n>", "split layers into stages whose weight file stays under N MB (10^6 bytes)")
    .addOption(new Option("--mlp-parts <n>", "tests: cut every decoder layer's MLP into N parts").hideHelp())
    .option("--parallel-parts", "with --max-stage-mb: every MLP part of a cut layer also holds its attention, so the layer is one hop, not two")
    .option("--min-mlp-parts <n>", "with --max-stage-mb: cut a layer that does not fit into at least N parts (smaller, faster hops)")
    .option("--head-shards <n>", "with --max-stage-mb: at least N head shards (they run in parallel)")
    .option("--block-size <n>", "int8/int4 quantisation block along the input dimension", "32")
    .option("--accuracy-level <n>", "MatMulNBits accuracy_level (0 = float32 compute, 4 = int8 compute)", "0")
    .option("--id <id>", "model id recorded in the manifest (default: the output folder's name)")
    .option("--vae <npz>", "also add big_vision's VQ-VAE mask decoder (vae-oid.npz), as convert-vae does")
    .action(async (hfDir: string, outDir: string, o: Record<string, string | undefined>) => {
      const dtype = o.dtype as WeightDtype;
      if (!WEIGHT_DTYPES.includes(dtype)) throw new Error(`--dtype must be one of ${WEIGHT_DTYPES.join(", ")}, got ${o.dtype}`);
      const maxShardMb = o.maxShardMb === undefined ? null : positive(o.maxShardMb, "--max-shard-mb");
      const maxStageMb = o.maxStageMb === undefined ? null : positive(o.maxStageMb, "--max-stage-mb");
      const stageBudget = {
        sessions: positive(o.stageSessions!, "--stage-sessions"),
        context: positive(o.stageContext!, "--stage-context"),
        prefillRows: positive(o.stagePrefillRows!, "--stage-prefill-rows"),
        adapterBytes: Math.round(nonNegative(o.stageAdapterMb!, "--stage-adapter-mb") * 1e6),
      };
      const blockSize = positive(o.blockSize!, "--block-size");
      if (!Number.isInteger(Math.log2(blockSize)) || blockSize < 16) throw new Error("--block-size must be a power of two ≥ 16");
      const started = Date.now();
      let m = await convert(hfDir, outDir, {
        dtype,
        maxShardMb,
        maxStageMb,
        stageBudget,
        mlpParts: o.mlpParts === undefined ? undefined : positive(o.mlpParts, "--mlp-parts"),
        parallelParts: o.parallelParts !== undefined,
        minMlpParts: o.minMlpParts === undefined ? undefined : positive(o.minMlpParts, "--min-mlp-parts"),
        headShards: o.headShards === undefined ? undefined : positive(o.headShards, "--head-shards"),
        blockSize,
        accuracyLevel: Number(o.accuracyLevel),
        id: o.id,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      if (o.vae !== undefined) {
        m = await convertVae(o.vae, outDir);
        process.stderr.write(`added the VQ-VAE mask decoder from ${o.vae}\n`);
      }
      const bytes = Object.values(m.files).reduce((a, f) => a + f.bytes, 0);
      process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s: ${m.stages.length} stages, ${(bytes / 1e6).toFixed(1)} MB\n`);
    });
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, got ${v}`);
  return n;
}

function nonNegative(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0, got ${v}`);
  return n;
}
