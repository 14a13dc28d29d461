import type { Command } from "commander";
import { loadModel } from "../node-runtime.ts";
import { DEFAULT_GEMM } from "../../shared/kernel/gemm.ts";
import { engineOption, gemmOption, parseIds, writeF32 } from "../io.ts";
import { adapterFrom, phaseEngine, pixelsFrom } from "../model-io.ts";

export function registerForward(program: Command): void {
  program
    .command("forward")
    .description("one full forward pass: logits float32[L, vocab] for every input position")
    .argument("<model_dir>", "converted model folder (manifest.json)")
    .requiredOption("--input-ids <list>", "comma-separated ids of the whole sequence, image-token ids included")
    .option("--pixel-values <file>", "float32[1,3,S,S] little-endian")
    .option("--image <file>", "PNG, JPEG, WebP or GIF image (preprocessed as the model expects)")
    .requiredOption("--logits-out <file>", "output: float32[L, vocab] little-endian")
    .option("--image-features-out <file>", "output: float32[N, H] image features, transformers' convention (÷ sqrt(H))")
    .option("--vision <engine>", "who encodes the image: ort (onnxruntime-web) or kernel (the WASM SIMD kernel) (default: ort, kernel with --adapter)")
    .option("--prefill <engine>", "who runs the prefill (here: the whole forward pass): ort or kernel (default: ort, kernel with --adapter)")
    .option("--gemm <mode>", "kernel prefill/vision GEMMs over int8/int4 weights: int8 (int8 activations for int4 weights, int16 for int8 ones; default), int8-a8 (int8 activations for both), int16 (integer), int7 (8-bit dots, coarser) or float (dequantised)", DEFAULT_GEMM)
    .option("--adapter <dir>", "a LoRA adapter converted for this model (<model_dir>/adapters/<name>), applied unmerged in the kernel")
    .action(async (modelDir: string, o: { inputIds: string; pixelValues?: string; image?: string; logitsOut: string; imageFeaturesOut?: string; vision?: string; prefill?: string; gemm: string; adapter?: string }) => {
      const prefill = engineOption("--prefill", phaseEngine(o.prefill, o.adapter));
      const model = await loadModel(modelDir, { vision: engineOption("--vision", phaseEngine(o.vision, o.adapter)), prefill, decode: prefill }, { gemm: gemmOption(o.gemm) });
      const adapter = await adapterFrom(model, o.adapter);
      const ids = parseIds(o.inputIds);
      const soft = await model.encodeImage(await pixelsFrom(model, o), { adapter });
      if (o.imageFeaturesOut) {
        // transformers' get_image_features(): projector output / sqrt(text hidden), in float32.
        const s = Math.fround(Math.sqrt(model.config.text.hidden));
        writeF32(o.imageFeaturesOut, soft.data.map((v) => Math.fround(v / s)));
      }
      const { logits, state } = await model.prefill(soft, ids, { allLogits: true, adapter });
      state.release?.();
      writeF32(o.logitsOut, logits);
      process.stderr.write(`wrote ${o.logitsOut}: float32[${ids.length}, ${model.config.text.vocab}]\n`);
    });
}
