/**
 * The real server, as `npm start` runs it (`wrangler dev`, both workers, defaults: no API keys): while
 * `npm run loadtest`'s driver keeps 16 streams busy, every malformed request of the catalogue is refused with
 * its 4xx JSON error and the server answers its health check after each, and every stream completes. A client
 * that drops its connection mid-stream frees its session within a second.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLoadTest, LOAD_DEFAULTS } from "../../scripts/loadtest.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { base64 } from "../serving/support/harness.ts";
import { badRequests, expectRefused, GOOD_PNG, requestInit } from "./support.ts";

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer();
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

describe("npm start's server under load", () => {
  it("refuses every malformed request with a 4xx JSON error while 16 concurrent streams complete", async () => {
    const load = runLoadTest({ ...LOAD_DEFAULTS, url: server.url, clients: 16, durationS: 5, requestTimeoutS: 60 });
    const bad = [
      ...badRequests(),
      { name: "JSON body over the limit", method: "POST", path: "/v1/generate", headers: { "content-type": "application/json" }, body: `{"prompt":"${"x".repeat(15 * 1024 * 1024)}"}`, status: 413 },
    ];
    let passes = 0;
    let finished = false;
    void load.finally(() => (finished = true));
    while (passes < 1 || (!finished && passes < 3)) {
      for (const b of bad) {
        await expectRefused(await fetch(`${server.url}${b.path}`, requestInit(b)), b);
        if (passes === 0) expect((await fetch(`${server.url}/healthz`)).status, `healthy after: ${b.name}`).toBe(200);
      }
      passes++;
    }
    const report = await load;
    expect(report.errorKinds, `${JSON.stringify(report.errorMessages)}\n${server.log().slice(-3000)}`).toEqual({});
    expect(report.errors).toBe(0);
    expect(report.completed).toBeGreaterThanOrEqual(16);
    expect(report.totalTokens).toBeGreaterThan(0);
    const health = await (await fetch(`${server.url}/healthz`)).json<any>();
    expect(health).toMatchObject({ status: "ok", auth: "open" });
  }, 120_000);

  it("a client that drops its socket mid-stream frees the session within a second", async () => {
    // Seeded sampling at temperature 2 makes the shapes model run to max_tokens (checked first, undisturbed).
    const body = { image: base64(GOOD_PNG), prompt: "caption en", max_tokens: 512, temperature: 2, seed: 4 };
    const whole = await fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: false }) });
    expect(await whole.json<any>()).toMatchObject({ finish_reason: "length", usage: { completion_tokens: 512 } });

    await dropAfterFirstToken(server.url, "/v1/generate", "dropped", body);
    const dropped = Date.now();
    let info: any;
    for (;;) {
      info = await (await fetch(`${server.url}/v1/sessions/dropped`)).json();
      if (!info.busy || Date.now() - dropped > 5000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Date.now() - dropped, JSON.stringify(info)).toBeLessThan(1000);
    expect(info.last_run.finish_reason).toBe("aborted");
    expect(info.last_run.completion_tokens).toBeLessThan(512);
    // The session takes the next request at once (no 429, no wait for an idle timeout).
    const t0 = Date.now();
    const next = await fetch(`${server.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-id": "dropped" },
      body: JSON.stringify({ prompt: "caption en", max_tokens: 2, stream: false }),
    });
    expect(next.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
  }, 60_000);
});

/** POSTs `body` over a raw socket, reads until the first SSE token frame, then destroys the socket. */
function dropAfterFirstToken(url: string, path: string, session: string, body: object): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: "POST", headers: { "content-type": "application/json", "x-session-id": session } }, (res) => {
      res.on("data", (chunk: Buffer) => {
        if (!chunk.toString().includes("event: token")) return;
        req.destroy();
        resolve();
      });
    });
    req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
    req.end(JSON.stringify(body));
  });
}
