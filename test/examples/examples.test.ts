/**
 * The README's runnable examples (examples/), run as written against a started server (`wrangler dev` with
 * both workers, as `npm start`): the curl + jq script and the TypeScript `openai` client must print the default
 * model's own answers for examples/shapes.png, as recorded in ../shared (eval/cases.json). The Python client
 * needs the `openai` package from PyPI, which these machines cannot reach: it is only parsed here.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, SHAPES_MODEL } from "../helpers/golden.ts";
import { startDevServer, type DevServer } from "../serving/support/dev-server.ts";

const run = promisify(execFile);
const EVAL_IMAGE = "img_001_160x120.png"; // copied to examples/shapes.png
const cases = (JSON.parse(readFileSync(join(SHAPES_MODEL, "eval/cases.json"), "utf8")) as { cases: { image: string; width: number; height: number; prefix: string; answer: string }[] }).cases;
/** The model's recorded greedy answer to `prefix` on the example image. */
const answer = (prefix: string) => {
  const c = cases.find((k) => k.image === EVAL_IMAGE && k.prefix === prefix);
  if (!c) throw new Error(`no recorded answer for ${prefix} on ${EVAL_IMAGE}`);
  return c;
};

/** The examples' environment: this server, the default model, no key (the dev server has none). */
const exampleEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PALIGEMMA_URL: server.url, MODEL: "paligemma-shapes" };
  delete env.API_KEY;
  return env;
};

let server: DevServer;
beforeAll(async () => {
  server = await startDevServer();
}, 180_000);
afterAll(async () => server?.stop());

describe("examples/", () => {
  it("shapes.png is the default model's eval image", () => {
    expect(readFileSync(join(REPO, "examples/shapes.png")).equals(readFileSync(join(SHAPES_MODEL, "eval", EVAL_IMAGE)))).toBe(true);
  });

  it("curl.sh (curl + jq): upload, caption, detect with boxes in pixels, streamed chat completion", async () => {
    const { stdout } = await run("bash", [join(REPO, "examples/curl.sh")], { cwd: REPO, env: exampleEnv() });
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^image_id: img_[0-9a-f]{64}$/);
    expect(lines[1]).toBe(`caption: ${answer("caption en").answer}`);
    // The recorded detection `<locY1><locX1><locY2><locX2> circle`, in pixels: v = loc / 1024 × width or height.
    const det = answer("detect circle");
    const [y1, x1, y2, x2] = [...det.answer.matchAll(/<loc(\d{4})>/g)].map((m) => Number(m[1]) / 1024);
    const px = (v: number, size: number) => Math.round(v * size);
    expect(lines[2]).toBe(`detect: circle ${px(x1, det.width)},${px(y1, det.height)} ${px(x2, det.width)},${px(y2, det.height)}`);
    expect(lines[3]).toBe(`how many shapes: ${answer("answer en how many shapes").answer}`);
    expect(lines).toHaveLength(4);
  }, 60_000);

  it("openai-client.ts (the official openai client): a caption, then a streamed answer", async () => {
    const { stdout } = await run("npx", ["tsx", join(REPO, "examples/openai-client.ts")], { cwd: REPO, env: exampleEnv() });
    expect(stdout.trimEnd().split("\n")).toEqual([
      `caption: ${answer("caption en").answer}`,
      `color of the square: ${answer("answer en what color is the square").answer}`,
    ]);
  }, 60_000);

  it("openai_client.py is valid Python and asks what the TypeScript client asks (not run: no openai package here)", async () => {
    const file = join(REPO, "examples/openai_client.py");
    await run("python3", ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])", file]);
    const py = readFileSync(file, "utf8");
    const ts = readFileSync(join(REPO, "examples/openai-client.ts"), "utf8");
    for (const s of ['"caption en"', '"answer en what color is the square"', '"paligemma-shapes"', "PALIGEMMA_URL", "API_KEY"]) {
      expect(py, s).toContain(s);
      expect(ts, s).toContain(s);
    }
  });
});
