/**
 * The model the workerd adapter-budget test serves from R2, made in Node when the workers' vitest config loads:
 * the committed shapes model under another id (`paligemma-shapes-lru`, so it never meets the R2 copy other tests
 * make) with two adapters converted into it, shapes-lora-a and `wide` (rank 16 on every decoder projection,
 * test/helpers/lora-fixtures.ts decoderModules), and the reference of `wide`: its merged checkpoint converted
 * on its own, run on the shapes golden input (lora-reference.ts).
 */
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { convertAdapter } from "../../converter/adapter/convert-adapter.ts";
import { decoderModules, writeMerged, writeSyntheticAdapter } from "../helpers/lora-fixtures.ts";
import { mergedReference } from "./lora-reference.ts";

/** The id the fixture model is stored under. */
export const LRU_MODEL = "paligemma-shapes-lru";

/**
 * `files`: JSON {path: base64} of the manifest and every adapter file (the weights are the committed model's,
 * copied from the static assets by the test); `wide`: the merged reference of adapter `wide`.
 */
export async function lruFixture(repo: string, shared: string): Promise<{ files: string; wide: Awaited<ReturnType<typeof mergedReference>> }> {
  const work = mkdtempSync(join(tmpdir(), "pg-lora-lru-"));
  try {
    const model = join(work, LRU_MODEL);
    cpSync(join(repo, "model-shards/paligemma-shapes"), model, { recursive: true, filter: (p) => !p.includes("/adapters") });
    const path = join(model, "manifest.json");
    const m = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...m, id: LRU_MODEL, adapters: undefined }, null, 1));
    await convertAdapter(join(shared, "golden-lora/shapes-lora-a"), join(model, "adapters/shapes-lora-a"));
    const { modules, config } = decoderModules();
    writeSyntheticAdapter(join(work, "peft-wide"), modules, config);
    await convertAdapter(join(work, "peft-wide"), join(model, "adapters/wide"));
    const out: Record<string, string> = { "manifest.json": readFileSync(path).toString("base64") };
    for (const f of readdirSync(join(model, "adapters"), { recursive: true, withFileTypes: true })) {
      if (f.isFile()) out[relative(model, join(f.parentPath, f.name))] = readFileSync(join(f.parentPath, f.name)).toString("base64");
    }
    await writeMerged(join(shared, "models/paligemma-shapes"), modules, join(work, "merged-wide"));
    return { files: JSON.stringify(out), wide: await mergedReference(join(work, "merged-wide"), shared) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
