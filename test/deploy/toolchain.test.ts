/**
 * The toolchain as package.json promises it: Node ≥ the engines floor runs every npm script (the pinned Node
 * from node_modules where this platform has a package for it, whatever the system's Node is), the child
 * processes the CLI tests spawn run the same Node and get the relaxed-SIMD kernel, one wrangler / miniflare /
 * workerd serves `npm start`, the tests and the dry-run deploy, and onnxruntime-node stays out of `npm ci`.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/golden.ts";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version: string; os?: string | string[]; cpu?: string | string[]; optional?: boolean; dependencies?: Record<string, string> }>;
};

const parts = (v: string) => v.split(".").map(Number);
/** a ≥ b for plain x.y.z versions. */
function atLeast(a: string, b: string): boolean {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}
const floor = /^>=(\d+\.\d+\.\d+)$/.exec(pkg.engines.node)?.[1];
/** The pinned Node's package for this platform (optionalDependencies), when one exists. */
const pinnedPackage = `node-${process.platform}-${process.arch}`;
const pinnedBin = join(REPO, "node_modules", pinnedPackage, "bin", "node");

describe("Node", () => {
  it("engines is a plain floor of Node 22 LTS or later, and this test runs on a Node that meets it", () => {
    expect(floor, `engines.node = ${pkg.engines.node}`).toBeDefined();
    expect(parts(floor!)[0]).toBeGreaterThanOrEqual(22);
    expect(atLeast(process.versions.node, floor!), `running Node ${process.versions.node}`).toBe(true);
  });

  it("the pinned Node packages are one version, the one in .nvmrc, each limited to its os and cpu", () => {
    const pins = Object.entries(pkg.optionalDependencies).filter(([name]) => /^node-(linux|darwin)-(x64|arm64)$/.test(name));
    expect(pins.length).toBeGreaterThan(0);
    const nvmrc = readFileSync(join(REPO, ".nvmrc"), "utf8").trim();
    for (const [name, version] of pins) {
      expect(version, name).toBe(nvmrc);
      expect(atLeast(version, floor!), name).toBe(true);
      const [, os, cpu] = /^node-(\w+)-(\w+)$/.exec(name)!;
      const locked = lock.packages[`node_modules/${name}`];
      expect(locked?.version, `${name} in package-lock.json`).toBe(version);
      expect([[locked.os].flat(), [locked.cpu].flat(), locked.optional], name).toEqual([[os], [cpu], true]);
    }
  });

  it("npm scripts run the pinned Node where this platform has it (else the system's, checked above)", () => {
    if (pkg.optionalDependencies[pinnedPackage] === undefined) {
      // No registry package for this platform (darwin-arm64): the system Node runs, and must meet engines.
      expect(existsSync(pinnedBin)).toBe(false);
    } else {
      expect(existsSync(pinnedBin), `${pinnedPackage} is installed by npm ci`).toBe(true);
      expect(realpathSync(process.execPath)).toBe(realpathSync(pinnedBin));
      expect(process.versions.node).toBe(pkg.optionalDependencies[pinnedPackage]);
    }
  });

  it("`npx tsx` (how the CLI and its tests run) gets the same Node and the relaxed-SIMD kernel build", async () => {
    const { stdout } = await run("npx", ["tsx", join(REPO, "test/deploy/fixtures/runtime.ts")], { cwd: REPO });
    const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as { node: string; execPath: string; flavor: string };
    expect(report.node).toBe(process.versions.node);
    expect(report.execPath).toBe(realpathSync(process.execPath));
    expect(report.flavor).toBe("relaxed"); // V8 in Node ≥ 22 runs relaxed SIMD without a flag
  }, 60_000);
});

describe("packages", () => {
  it("one wrangler, one miniflare and one workerd for dev, the workers tests and the dry-run deploy", () => {
    for (const name of ["wrangler", "miniflare", "workerd"]) {
      const copies = Object.keys(lock.packages).filter((p) => p === `node_modules/${name}` || p.endsWith(`/node_modules/${name}`));
      expect(copies, name).toEqual([`node_modules/${name}`]);
    }
    const pool = lock.packages["node_modules/@cloudflare/vitest-pool-workers"];
    expect(pool.dependencies?.wrangler).toBe(pkg.devDependencies.wrangler);
    expect(pool.dependencies?.miniflare).toBe(lock.packages["node_modules/miniflare"].version);
  });

  it("onnxruntime-node (the benchmark's baseline) is not installed by npm ci; bench:setup adds it without saving", () => {
    for (const deps of [pkg.dependencies, pkg.devDependencies, pkg.optionalDependencies]) expect(Object.keys(deps)).not.toContain("onnxruntime-node");
    expect(Object.keys(lock.packages).filter((p) => p.endsWith("node_modules/onnxruntime-node"))).toEqual([]);
    expect(pkg.scripts["bench:setup"]).toMatch(/^npm install --no-save .*onnxruntime-node@\d+\.\d+\.\d+$/);
  });
});
