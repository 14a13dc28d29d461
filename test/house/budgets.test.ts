/**
 * Budgets that keep the house as it is (small files, one onnxruntime module, the layers of functions/README.md):
 *
 * 1. no source file in functions/, shared/, converter/ or kernels/ passes {@link MAX_LINES} lines;
 * 2. only shared/engine/ort.ts imports onnxruntime (-web or -common); onnxruntime-node is the benchmark's
 *    (bench/) and so is the onnxruntime-common it is typed with; a `.wasm` file taken from the package is an
 *    asset, not an import of onnxruntime;
 * 3. functions/vision and functions/decoder never import each other (they meet in shared/ and over the binding);
 * 4. shared/ never imports functions/.
 *
 * Each rule is a pure function of file texts, run on the tree and, first, on a made-up tree that breaks it, so
 * every check is seen to fail.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { REPO } from "../helpers/golden.ts";

/** Longest source file, in lines. */
const MAX_LINES = 300;

/**
 * Files over the budget for now, in folders being rewritten (the engine: shared/engine/, shared/kernel/,
 * kernels/, converter/). TEMPORARY: the engine rewrite splits them and empties this list.
 */
const OVER_BUDGET_FOR_NOW: Readonly<Record<string, number>> = {};

/** Generated files (their first line says so): built artifacts, checked against their source elsewhere. */
const GENERATED: readonly string[] = ["functions/playground/script.built.ts"];

/** A source file: its path from the repo root (with "/") and its text. */
interface SourceFile {
  readonly path: string;
  readonly text: string;
}

const SOURCE = /\.(?:[cm]?[jt]s)$/;

/** Source files under `dirs` (node_modules and dot folders left out). */
function sources(dirs: readonly string[]): SourceFile[] {
  const out: SourceFile[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name.startsWith(".")) continue;
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (SOURCE.test(name)) out.push({ path: relative(REPO, full).split("\\").join("/"), text: readFileSync(full, "utf8") });
    }
  };
  for (const d of dirs) walk(join(REPO, d));
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

function lineCount(text: string): number {
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** Files over the line budget and not allowed to be, as "path: lines". */
function overBudget(files: readonly SourceFile[], allowed: Readonly<Record<string, number>> = OVER_BUDGET_FOR_NOW): string[] {
  return files
    .filter((f) => !GENERATED.includes(f.path))
    .map((f) => ({ path: f.path, lines: lineCount(f.text) }))
    .filter((f) => f.lines > MAX_LINES && !(f.path in allowed && f.lines <= allowed[f.path]))
    .map((f) => `${f.path}: ${f.lines}`);
}

/** The module specifiers a file imports (static, dynamic, export-from, require), as TypeScript reads them. */
function importsOf(file: SourceFile): string[] {
  return ts.preProcessFile(file.text, true, true).importedFiles.map((r) => r.fileName);
}

/** Where a relative specifier of `file` points, from the repo root; null for a package. */
function target(file: SourceFile, spec: string): string | null {
  return spec.startsWith(".") ? posix.normalize(posix.join(posix.dirname(file.path), spec)) : null;
}

/** The package a specifier names ("onnxruntime-web" for "onnxruntime-web/wasm" or a path into node_modules). */
function packageOf(file: SourceFile, spec: string): string {
  const path = target(file, spec);
  const bare = path === null ? spec : path.includes("node_modules/") ? path.slice(path.lastIndexOf("node_modules/") + 13) : "";
  const parts = bare.split("/");
  return bare.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Imports of onnxruntime outside the one module that may, as "path → specifier". */
function ortImports(files: readonly SourceFile[]): string[] {
  const bad: string[] = [];
  for (const f of files) {
    for (const spec of importsOf(f)) {
      if (spec.endsWith(".wasm")) continue; // the binary as a bundle asset
      const pkg = packageOf(f, spec);
      if (!pkg.startsWith("onnxruntime")) continue;
      const allowed = f.path.startsWith("bench/") ? pkg === "onnxruntime-node" || pkg === "onnxruntime-common" : f.path === "shared/engine/ort.ts" && pkg !== "onnxruntime-node";
      if (!allowed) bad.push(`${f.path} → ${spec}`);
    }
  }
  return bad;
}

/** Imports from a file under `from` into `into`, as "path → specifier". */
function importsAcross(files: readonly SourceFile[], from: string, into: string): string[] {
  return files
    .filter((f) => f.path.startsWith(from))
    .flatMap((f) => importsOf(f).filter((s) => (target(f, s) ?? "").startsWith(into)).map((s) => `${f.path} → ${s}`));
}

/** Every broken rule of a tree. */
function violations(files: readonly SourceFile[], allowed?: Readonly<Record<string, number>>) {
  const budgeted = files.filter((f) => /^(?:functions|shared|converter|kernels)\//.test(f.path));
  return {
    lines: overBudget(budgeted, allowed),
    onnxruntime: ortImports(files),
    visionToDecoder: importsAcross(files, "functions/vision/", "functions/decoder/"),
    decoderToVision: importsAcross(files, "functions/decoder/", "functions/vision/"),
    sharedToFunctions: importsAcross(files, "shared/", "functions/"),
  };
}

describe("the house's budgets", () => {
  it("catch each kind of breach in a made-up tree", () => {
    const long = "x\n".repeat(MAX_LINES + 1);
    const made: SourceFile[] = [
      { path: "functions/decoder/long.ts", text: long },
      { path: "kernels/assembly/long.ts", text: long },
      { path: "shared/kernel/weights.ts", text: "x\n".repeat(400) }, // grew past its allowance
      { path: "shared/engine/ort.ts", text: 'import * as ort from "onnxruntime-web/wasm";\n' },
      { path: "shared/engine/second.ts", text: 'import type { Tensor } from "onnxruntime-common";\n' },
      { path: "shared/worker/model.ts", text: 'import ortWasm from "../../node_modules/onnxruntime-web/dist/ort.wasm";\nconst m = await import("onnxruntime-web");\n' },
      { path: "cli/native.ts", text: 'const ort = require("onnxruntime-node");\n' },
      { path: "bench/runtimes/native.ts", text: 'import type * as Ort from "onnxruntime-common";\n' },
      { path: "functions/vision/app.ts", text: 'import { x } from "../decoder/limits.ts";\n' },
      { path: "functions/decoder/run.ts", text: 'import type {\n  ImageRecord,\n} from "../vision/encode.ts";\nexport * from "../playground/index.ts";\n' },
      { path: "shared/api/thing.ts", text: 'import { decoderDeps } from "../../functions/decoder/wiring.ts";\n' },
    ];
    expect(violations(made)).toEqual({
      lines: ["functions/decoder/long.ts: 301", "kernels/assembly/long.ts: 301", "shared/kernel/weights.ts: 400"],
      onnxruntime: ["shared/engine/second.ts → onnxruntime-common", "shared/worker/model.ts → onnxruntime-web", "cli/native.ts → onnxruntime-node"],
      visionToDecoder: ["functions/vision/app.ts → ../decoder/limits.ts"],
      decoderToVision: ["functions/decoder/run.ts → ../vision/encode.ts"],
      sharedToFunctions: ["shared/api/thing.ts → ../../functions/decoder/wiring.ts"],
    });
  });

  it("hold for the repository", () => {
    const files = sources(["functions", "shared", "converter", "kernels", "cli", "scripts", "bench", "examples"]);
    expect(files.length).toBeGreaterThan(100);
    for (const g of GENERATED) expect(files.find((f) => f.path === g)?.text.startsWith("// Generated by"), g).toBe(true);
    expect(violations(files)).toEqual({ lines: [], onnxruntime: [], visionToDecoder: [], decoderToVision: [], sharedToFunctions: [] });
  });

  it("keep the allow-list honest: each entry is still over the budget (else it leaves the list)", () => {
    const files = sources(Object.keys(OVER_BUDGET_FOR_NOW).map((p) => dirname(p)));
    for (const [path, lines] of Object.entries(OVER_BUDGET_FOR_NOW)) {
      const n = lineCount(files.find((f) => f.path === path)?.text ?? "");
      expect(n, path).toBeGreaterThan(MAX_LINES);
      expect(n, path).toBeLessThanOrEqual(lines);
    }
  });
});
