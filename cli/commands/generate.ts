import type { Command } from "commander";
import { loadModel } from "../node-runtime.ts";
import { engineOption, gemmOption, parseIds } from "../io.ts";
import { loadTokenizer, pixelsFrom } from "../model-io.ts";
import { generateAll } from "../../shared/generation/generate.ts";
import { buildPromptIds } from "../../shared/text/prompt.ts";
import { vocabMask } from "../../shared/model/vocab.ts";

interface Opts {
  inputIds?: string;
  prompt?: string;
  pixelValues?: string;
  image?: string;
  maxNewTokens: string;
  greedy?: boolean;
  temperature?: string;
  topK?: string;
  topP?: string;
  seed?: string;
  decode: string;
  vision: string;
  prefill: string;
  gemm: string;
}

export function registerGenerate(program: Command): void {
  program
    .command("generate")
    .description("generate text; streams it on stderr and prints {ids, text, finish_reason} as the last stdout line")
    .argument("<model_dir>", "converted model folder (manifest.json)")
    .option("--input-ids <list>", "the whole prompt as ids, image-token ids included")
    .option("--prompt <text>", "prefix text, laid out as <image>×N <bos> text \\n")
    .option("--pixel-values <file>", "float32[1,3,S,S] little-endian")
    .option("--image <file>", "PNG or JPEG image")
    .requiredOption("--max-new-tokens <n>", "token limit (eos included)")
    .option("--greedy", "greedy decoding (the default)")
    .option("--temperature <t>", "sampling temperature (0 = greedy)")
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", "0")
    .option("--top-p <p>", "nucleus sampling mass (1 = off)", "1")
    .option("--seed <s>", "random seed", "0")
    .option("--decode <engine>", "who runs the decode steps: ort (onnxruntime-web) or kernel (the WASM SIMD kernel)", "ort")
    .option("--vision <engine>", "who encodes the image: ort (onnxruntime-web) or kernel (the WASM SIMD kernel)", "ort")
    .option("--prefill <engine>", "who runs the prefill: ort (onnxruntime-web) or kernel (the WASM SIMD kernel)", "ort")
    .option("--gemm <mode>", "kernel prefill/vision GEMMs over int8/int4 weights: int16 (integer, default), int7 (8-bit dots, coarser) or float (dequantised)", "int16")
    .action(async (modelDir: string, o: Opts) => {
      if (!!o.inputIds === !!o.prompt) throw new Error("give exactly one of --input-ids and --prompt");
      if (o.greedy && o.temperature !== undefined) throw new Error("--greedy and --temperature exclude each other");
      const model = await loadModel(modelDir, { decode: engineOption("--decode", o.decode), vision: engineOption("--vision", o.vision), prefill: engineOption("--prefill", o.prefill) }, { gemm: gemmOption(o.gemm) });
      const tokenizer = loadTokenizer(modelDir, model);
      const { config } = model;
      let ids: number[];
      if (o.prompt !== undefined) {
        if (!tokenizer) throw new Error(`model ${model.manifest.id} has no tokenizer: use --input-ids`);
        ids = buildPromptIds(tokenizer, o.prompt, config.imageTokens, config.tokens);
      } else {
        ids = parseIds(o.inputIds!);
      }
      const soft = await model.encodeImage(await pixelsFrom(model, o));
      const result = await generateAll(
        model,
        soft,
        ids,
        {
          sampling: { temperature: Number(o.temperature ?? 0), topK: Number(o.topK), topP: Number(o.topP) },
          seed: Number(o.seed),
          maxTokens: Number(o.maxNewTokens),
          eos: [config.tokens.eos],
          mask: vocabMask(model.manifest),
          tokenizer,
        },
        (t) => process.stderr.write(t.text),
      );
      result.prefill.state.release?.();
      process.stderr.write("\n");
      process.stdout.write(`${JSON.stringify({ ids: result.ids, text: result.text, finish_reason: result.finishReason })}\n`);
    });
}
