/**
 * The real server, as `npm start` runs it (`wrangler dev`, both workers, defaults: no API keys): while
 * `npm run loadtest`'s driver keeps 16 streams busy, every malformed request of the catalogue is refused with
 * its 4xx JSON error, and every stream completes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLoadTest, LOAD_DEFAULTS } from "../../scripts/loadtest.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";
import { badRequests, expectRefused, requestInit } from "./support.ts";

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
      for (const b of bad) await expectRefused(await fetch(`${server.url}${b.path}`, requestInit(b)), b);
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
});
