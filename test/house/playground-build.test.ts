/**
 * The playground's inline script (functions/playground/script.built.ts, committed so that `npm start` and
 * `wrangler deploy` need no build step) is exactly what its typed source (functions/playground/browser/) bundles
 * to with the pinned esbuild: a stale file fails here (run `npm run build:playground`).
 */
import { expect, it } from "vitest";
import { PLAYGROUND_JS } from "../../functions/playground/script.built.ts";
import { builtModule, bundlePlayground, playgroundIsFresh } from "../../scripts/build-playground.ts";

it("functions/playground/script.built.ts matches a fresh bundle of functions/playground/browser", async () => {
  const js = await bundlePlayground();
  expect(PLAYGROUND_JS).toBe(js);
  expect(builtModule(js)).toContain("String.raw`");
  expect(await playgroundIsFresh()).toBe(true);
});
