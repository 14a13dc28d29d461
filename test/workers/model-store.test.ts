/**
 * Model files through both stores in workerd: private static assets (the default) and R2 (large models), read
 * by the same runtime, give the same soft tokens.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { preprocessImage } from "../../shared/image/index.ts";
import { ModelCache } from "../../shared/worker/model-cache.ts";
import { assetsStore, modelStoreFor } from "../../shared/worker/model-store.ts";
import type { ServingModel } from "../../shared/worker/serving-model.ts";
import { workersModel } from "../../shared/worker/workers-model.ts";
import { fromBase64 } from "./support.ts";

describe("model stores", () => {
  it("assets: reads manifest files, null for a missing one", async () => {
    const store = assetsStore(env.MODEL_ASSETS!, "paligemma-shapes");
    const manifest = JSON.parse(new TextDecoder().decode((await store.get("manifest.json"))!));
    expect(manifest.id).toBe("paligemma-shapes");
    expect(await store.get("no-such-file.bin")).toBeNull();
    expect(() => modelStoreFor({ ...env, MODEL_SOURCE: "s3" })).toThrow(/MODEL_SOURCE/);
  });

  it("r2: the model uploaded to R2 runs and matches the assets copy", async () => {
    const assets = assetsStore(env.MODEL_ASSETS!, "paligemma-shapes");
    const manifest = JSON.parse(new TextDecoder().decode((await assets.get("manifest.json"))!)) as { files: Record<string, unknown> };
    for (const name of [...Object.keys(manifest.files), "manifest.json"]) {
      await env.MODEL_BUCKET!.put(`paligemma-shapes/${name}`, (await assets.get(name))!);
    }
    const cache = new ModelCache<ServingModel>();
    const fromR2 = await workersModel(cache, { ...env, MODEL_SOURCE: "r2" }, { tokenizer: false, backends: {} });
    const fromAssets = await workersModel(cache, env, { tokenizer: false, backends: {} });
    expect(fromR2).not.toBe(fromAssets);
    const pixels = await preprocessImage(fromBase64(env.EVAL_IMAGE_001), fromR2.manifest.preprocess, { maxPixels: 1e6 });
    const [a, b] = await Promise.all([fromR2.engine.encodeImage(pixels), fromAssets.engine.encodeImage(pixels)]);
    expect([a.tokens, a.dim]).toEqual([36, 192]);
    expect(a.data).toEqual(b.data);
  });
});
