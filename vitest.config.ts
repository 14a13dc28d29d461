import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/workers/**", "node_modules/**"],
    setupFiles: ["test/setup/image-codecs.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
