/**
 * Builds the decode kernel module (kernels/assembly/, AssemblyScript) into kernels/wasm/: one build with
 * relaxed SIMD and one with plain SIMD only (shared/kernel/module.ts picks at start-up). AssemblyScript is a
 * devDependency and its output is deterministic, so the committed .wasm files can be checked against the
 * source on any clone (`--check`, and test/kernel/build.test.ts).
 *
 *   tsx kernels/build.ts            rebuild kernels/wasm/*.wasm
 *   tsx kernels/build.ts --check    rebuild into a temp folder and fail when the committed files differ
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

export const KERNELS_DIR = dirname(fileURLToPath(import.meta.url));
export const WASM_DIR = join(KERNELS_DIR, "wasm");

/** The two builds: file name in kernels/wasm/ and the features each enables. */
export const KERNEL_BUILDS = [
  { file: "paligemma-kernel-relaxed.wasm", features: ["simd", "relaxed-simd"] },
  { file: "paligemma-kernel-simd.wasm", features: ["simd"] },
] as const;

/** Compiles every build into `outDir`; throws with the compiler's messages on failure. */
export async function buildKernels(outDir: string = WASM_DIR): Promise<string[]> {
  const written: string[] = [];
  for (const b of KERNEL_BUILDS) {
    const out = join(outDir, b.file);
    const args = [join(KERNELS_DIR, "assembly/index.ts"), "-o", out, "-O3", "--noAssert", "--runtime", "stub"];
    for (const f of b.features) args.push("--enable", f);
    const stderr = asc.createMemoryStream();
    const { error } = await asc.main(args, { stderr });
    if (error) throw new Error(`asc failed for ${b.file}: ${error.message}\n${stderr.toString()}`);
    written.push(out);
  }
  return written;
}

/** Rebuilds into a temp folder and lists the committed files that differ from (or lack) a fresh build. */
export async function checkKernels(committedDir: string = WASM_DIR): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), "pg-kernels-"));
  try {
    await buildKernels(tmp);
    const stale: string[] = [];
    for (const b of KERNEL_BUILDS) {
      let committed: Buffer | null = null;
      try {
        committed = readFileSync(join(committedDir, b.file));
      } catch {
        committed = null;
      }
      if (!committed || !committed.equals(readFileSync(join(tmp, b.file)))) stale.push(b.file);
    }
    return stale;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--check")) {
    const stale = await checkKernels();
    if (stale.length) {
      process.stderr.write(`kernels/wasm is out of date (${stale.join(", ")}): run npm run build:kernels\n`);
      process.exit(1);
    }
    process.stderr.write("kernels/wasm matches kernels/assembly\n");
    return;
  }
  for (const f of await buildKernels()) process.stderr.write(`wrote ${f}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
