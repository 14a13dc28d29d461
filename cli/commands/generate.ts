import type { Command } from "commander";
import { loadModel } from "../node-runtime.ts";
import { DEFAULT_GEMM } from "../../shared/kernel/gemm.ts";
import { engineOption, gemmOption, parseIds } from "../io.ts";
import { adapterFrom, loadTokenizer, phaseEngine, pixelsFrom } from "../model-io.ts";
import { withAdapter } from "../../shared/engine/adapted.ts";
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
  decode?: string;
  vision?: string;
  prefill?: string;
  gemm: string;
  adapter?: string;
}

export function registerGenerate(program: Command): void {
  program
    .command("generate")
    .description("generate text; streams it on stderr and prints {ids, text, finish_reason} as the last stdout line")
    .argument("<model_dir>", "converted model folder (manifest.json)")
    .option("--input-ids <list>", "the whole prompt as ids, image-token ids included")
    .option("--prompt <text>", "prefix text, laid out as <image>×N <bos> text \\n")
    .option("--pixel-values <file>", "float32[1,3,S,S] little-endian")
    .option("--image <file>", "PNG, JPEG, WebP or GIF image")
    .requiredOption("--max-new-tokens <n>", "token limit (eos included)")
    .option("--greedy", "greedy decoding (the default)")
    .option("--temperature <t>", "sampling temperature (0 = greedy)")
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", "0")
    .option("--top-p <p>", "nucleus sampling mass (1 = off)", "1")
    .option("--seed <s>", "random seed", "0")
    .option("--decode <engine>", "who runs the decode steps: ort (onnxruntime-web) or kernel (the WASM SIMD kernel) (default: ort, kernel with --adapter)")
    .option("--vision <engine>", "who encodes the image: ort or kernel (default: ort, kernel with --adapter)")
    .option("--prefill <engine>", "who runs the prefill: ort or kernel (default: ort, kernel with --adapter)")
    .option("--gemm <mode>", "kernel prefill/vision GEMMs over int8/int4 weights: int8 (int8 activations for int4 weights, int16 for int8 ones; default), int8-a8 (int8 activations for both), int16 (integer), int7 (8-bit dots, coarser) or float (dequantised)", DEFAULT_GEMM)
    .option("--adapter <dir>", "a LoRA adapter converted for this model (<model_dir>/adapters/<name>), applied unmerged in the kernel")
    .action(async (modelDir: string, o: Opts) => {
      if (!!o.inputIds === !!o.prompt) throw new Error("give exactly one of --input-ids and --prompt");
      if (o.greedy && o.temperature !== undefined) throw new Error("--greedy and --temperature exclude each other");
      const phase = (flag: string, v: string | undefined) => engineOption(flag, phaseEngine(v, o.adapter));
      const model = await loadModel(modelDir, { decode: phase("--decode", o.decode), vision: phase("--vision", o.vision), prefill: phase("--prefill", o.prefill) }, { gemm: gemmOption(o.gemm) });
      const engine = withAdapter(model, await adapterFrom(model, o.adapter));
      const tokenizer = loadTokenizer(modelDir, model);
      const { config } = model;
      let ids: number[];
      if (o.prompt !== undefined) {
        if (!tokenizer) throw new Error(`model ${model.manifest.id} has no tokenizer: use --input-ids`);
        ids = buildPromptIds(tokenizer, o.prompt, config.imageTokens, config.tokens);
      } else {
        ids = parseIds(o.inputIds!);
      }
      const soft = await engine.encodeImage(await pixelsFrom(model, o));
      const result = await generateAll(
        engine,
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
