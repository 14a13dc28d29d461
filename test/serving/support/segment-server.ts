/**
 * `wrangler dev` as `npm start` runs it (both workers, miniflare's KV / Durable Objects / assets), with two
 * test changes for the mask end-to-end tests: the decoder's entry is segment-entry.ts (segment prompts scripted
 * with the VQ-VAE golden's codes), and its static assets are a copy of the default model to which `convert-vae`
 * added ../shared/golden-vqvae/vae-random.npz. The vision worker is unchanged.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertVae } from "../../../converter/vae.ts";
import { REPO } from "../../helpers/golden.ts";
import { VQVAE_DIR } from "../../masks/support.ts";
import { startDevServer, type DevServer } from "./dev-server.ts";

/** Starts the server; `stop()` also removes the model copy. */
export async function startSegmentServer(timeoutMs = 180_000): Promise<DevServer> {
  const dir = mkdtempSync(join(tmpdir(), "paligemma-masks-"));
  const model = join(dir, "model-shards/paligemma-shapes");
  cpSync(join(REPO, "model-shards/paligemma-shapes"), model, { recursive: true });
  await convertVae(join(VQVAE_DIR, "vae-random.npz"), model);
  const config = readFileSync(join(REPO, "wrangler.toml"), "utf8")
    .replace(/^main = .*$/m, `main = ${JSON.stringify(join(REPO, "test/serving/support/segment-entry.ts"))}`)
    .replace(/^directory = "model-shards"$/m, `directory = ${JSON.stringify(join(dir, "model-shards"))}`);
  if (!config.includes(dir)) throw new Error("wrangler.toml changed: its main or [assets] directory line was not found");
  writeFileSync(join(dir, "wrangler.toml"), config);
  try {
    const server = await startDevServer({ timeoutMs, config: join(dir, "wrangler.toml") });
    return {
      ...server,
      stop: async () => {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
