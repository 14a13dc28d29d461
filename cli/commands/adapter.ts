/**
 * `convert-adapter <peft_dir> <model_dir>/adapters/<name>`: a Hugging Face PEFT LoRA adapter → the model's
 * adapters/<name>/ (factors cut like the model's stages, adapter.json) and an entry in its manifest.json.
 */
import type { Command } from "commander";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";

export function registerAdapter(program: Command): void {
  program
    .command("convert-adapter")
    .description("convert a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) for a converted model")
    .argument("<peft_dir>", "folder with adapter_config.json and adapter_model.safetensors")
    .argument("<out_dir>", "<model_dir>/adapters/<name>: the name becomes the model id <base>:<name>")
    .action(async (peftDir: string, outDir: string) => {
      await convertAdapter(peftDir, outDir, (line) => process.stderr.write(`${line}\n`));
    });
}
