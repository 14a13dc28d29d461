/**
 * Starts the real thing for end-to-end tests: `wrangler dev` with both workers' configs (as `npm start` does),
 * on a free port, with a fresh local state folder, and stops it (the whole process group) afterwards.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../../helpers/golden.ts";

/** A running dev server. */
export interface DevServer {
  readonly url: string;
  /** Everything the server printed (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Environment for wrangler in tests: no network calls, no telemetry. */
export const OFFLINE_ENV = {
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_LOG: "warn",
  NO_COLOR: "1",
};

/** How to start the server. */
export interface DevServerOptions {
  readonly timeoutMs?: number;
  /** Vars for the decoder worker (`--var NAME:value`), e.g. `{ RATE_LIMIT_RPM: "0" }`. */
  readonly vars?: Record<string, string>;
  /** The decoder worker's config (default: the repository's wrangler.toml, as `npm start`). */
  readonly config?: string;
  /** Every config to run, the decoder's first (replaces `config` and the vision worker's default). */
  readonly configs?: readonly string[];
  /** Start it as `npm start -- <args>` does (scripts/start.ts, which passes its arguments to wrangler). */
  readonly viaStartScript?: boolean;
}

/**
 * Spawns `wrangler dev -c wrangler.toml -c functions/vision/wrangler.toml` and waits for /healthz.
 * @param options a timeout in ms, or {@link DevServerOptions}
 */
export async function startDevServer(options: number | DevServerOptions = {}): Promise<DevServer> {
  const opts = typeof options === "number" ? { timeoutMs: options } : options;
  // Free ports are picked before wrangler binds them (and workerd picks its own for each worker): another test
  // starting a server at the same moment can take one first. That start failed for a reason of the machine's,
  // not of the code under test, so it is tried again with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (attempt >= PORT_RACE_ATTEMPTS || !String(err).includes("Address already in use")) throw err;
    }
  }
}

/** Starts of a dev server tried when a port it picked was taken before it could bind it. */
const PORT_RACE_ATTEMPTS = 3;

async function startOnce(options: DevServerOptions): Promise<DevServer> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), "paligemma-e2e-"));
  const wrangler = join(REPO, "node_modules/wrangler/bin/wrangler.js");
  const configs = options.configs ?? [options.config ?? "wrangler.toml", "functions/vision/wrangler.toml"];
  const args = options.viaStartScript
    ? [join(REPO, "node_modules/tsx/dist/cli.mjs"), "scripts/start.ts"] // PORT below; the rest goes to wrangler
    : [wrangler, "dev", ...configs.flatMap((c) => ["-c", c]), "--port", String(port)];
  args.push("--ip", "127.0.0.1", "--persist-to", state, "--inspector-port", String(await freePort()));
  for (const [name, value] of Object.entries(options.vars ?? {})) args.push("--var", `${name}:${value}`);
  const env = { ...process.env, ...OFFLINE_ENV, PORT: String(port) };
  const child = spawn(process.execPath, args, { cwd: REPO, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  // The server runs in its own process group (so stop() can end workerd too); if this process dies without
  // calling stop(), take the group down with it.
  const killOnExit = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", killOnExit);
  child.once("exit", () => process.off("exit", killOnExit));
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const server: DevServer = {
    url: `http://127.0.0.1:${port}`,
    log: () => output,
    stop: () => stop(child, state),
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${server.url}/healthz`);
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await server.stop();
  throw new Error(`wrangler dev did not become healthy:\n${output}`);
}

async function stop(child: ChildProcess, state: string): Promise<void> {
  if (child.exitCode === null && child.pid !== undefined) {
    const exited = new Promise((r) => child.once("exit", r));
    try {
      process.kill(-child.pid, "SIGTERM"); // the process group: wrangler and its workerd
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(state, { recursive: true, force: true });
}
