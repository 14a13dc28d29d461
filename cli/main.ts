/**
 * paligemma-edge command line: `npm run -s cli -- <command> …`. Progress and streamed text go to stderr;
 * machine-readable results to stdout or files.
 */
import { Command } from "commander";
import { registerConvert } from "./commands/convert.ts";
import { registerPreprocess } from "./commands/preprocess.ts";
import { registerForward } from "./commands/forward.ts";
import { registerGenerate } from "./commands/generate.ts";
import { registerVae } from "./commands/vae.ts";
import { registerAdapter } from "./commands/adapter.ts";

const program = new Command("paligemma-edge").description("convert and run PaliGemma models for the edge").showHelpAfterError();
registerConvert(program);
registerPreprocess(program);
registerForward(program);
registerGenerate(program);
registerVae(program);
registerAdapter(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
