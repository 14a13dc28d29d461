/**
 * What the tasks' end-to-end tests need: a running server (the serving tests' `wrangler dev`, as `npm start`
 * runs it, or an already running one named by PALIGEMMA_BASE_URL) and Debian's Chromium driven by
 * playwright-core (no browser download; `.ci/run` installs the `chromium` package when it is missing).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { REPO } from "../helpers/golden.ts";
import { startDevServer } from "../serving/support/dev-server.ts";

/** A server under test. */
export interface ServerUnderTest {
  readonly url: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts `wrangler dev` with both workers on a free port, or uses PALIGEMMA_BASE_URL when it is set. */
export async function startServer(): Promise<ServerUnderTest> {
  const external = process.env.PALIGEMMA_BASE_URL;
  if (external) return { url: external.replace(/\/+$/, ""), log: () => "(external server)", stop: async () => {} };
  return startDevServer(180_000);
}

/** Folder for test artifacts (screenshots); ignored by git. */
export function artifactDir(): string {
  const dir = join(REPO, "test-artifacts");
  mkdirSync(dir, { recursive: true });
  return dir;
}

const CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser"];

/** The Chromium binary: CHROMIUM_PATH, else Debian's. Missing → an error that says how to install it. */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (!path || !existsSync(path)) {
    throw new Error("Chromium not found: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH)");
  }
  return path;
}

/** Flags for a quiet, offline headless Chromium in a container. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A headless Chromium context with a fresh profile, removed again by `close()`. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "paligemma-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1000 },
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
