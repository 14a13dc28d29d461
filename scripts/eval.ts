/**
 * The accuracy check through the HTTP API of a running server:
 *
 *   npm run eval -- ../shared/models/paligemma-shapes/eval/cases.json [--base-url http://localhost:8787]
 *                  [--concurrency 2] [--max-tokens 24] [--json] [--min-recall 0.5] [--min-caption 75%] …
 *
 * Prints a table (caption/count/colour exact match, detection recall at IoU >= 0.5, mean IoU, precision, and
 * agreement with the reference model's recorded answers); with `--json` the last stdout line is the whole
 * report as JSON. Exit status: 0 ok, 1 a `--min-*` threshold missed, 2 requests failed or bad arguments.
 */
import { Command, Option } from "commander";
import { loadEvalSet } from "./eval/cases.ts";
import { formatReport, missedThresholds, parseThreshold, THRESHOLDS, type ThresholdName } from "./eval/report.ts";
import { runEval } from "./eval/run.ts";

const positiveInt = (text: string): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`not a positive integer: "${text}"`);
  return n;
};

const program = new Command()
  .name("eval")
  .description("run an eval set (cases.json) through a running server's native API and score it")
  .argument("<cases>", "cases.json, or the folder holding it (image paths are relative to it)")
  .option("--base-url <url>", "the server", "http://localhost:8787")
  .option("--concurrency <n>", "images in flight at once", positiveInt, 2)
  .option("--max-tokens <n>", "token limit per answer", positiveInt, 24)
  .option("--timeout <seconds>", "per-request timeout", positiveInt, 120)
  .option("--json", "print the whole report as JSON on the last line")
  .option("--quiet", "no progress on stderr");
for (const name of Object.keys(THRESHOLDS)) {
  program.addOption(new Option(`--min-${name} <value>`, `fail (exit 1) when ${name} is below this (0.5 or 50%)`).argParser(parseThreshold));
}

/** Commander's camel-cased option key of a threshold name. */
const optionKey = (name: string): string => `min-${name}`.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());

async function main(): Promise<number> {
  program.parse();
  const opts = program.opts();
  const loaded = await loadEvalSet(program.args[0]);
  const mins: Partial<Record<ThresholdName, number>> = {};
  for (const name of Object.keys(THRESHOLDS) as ThresholdName[]) {
    const value = opts[optionKey(name)] as number | undefined;
    if (value !== undefined) mins[name] = value;
  }
  const progress = (done: number, total: number): void => {
    if (!opts.quiet && process.stderr.isTTY) process.stderr.write(`\r${done}/${total} cases`);
  };
  const report = await runEval(loaded, {
    baseUrl: opts.baseUrl as string,
    concurrency: opts.concurrency as number,
    maxTokens: opts.maxTokens as number,
    timeoutMs: (opts.timeout as number) * 1000,
    onProgress: progress,
  });
  if (!opts.quiet && process.stderr.isTTY) process.stderr.write("\n");
  process.stdout.write(`${formatReport(report)}\n`);
  const missed = missedThresholds(report, mins);
  for (const m of missed) process.stdout.write(`THRESHOLD MISSED: ${m}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...report, thresholds: mins, missed })}\n`);
  if (report.errors.length > 0) return 2;
  return missed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`eval: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
