/**
 * The committed kernel builds (kernels/wasm/*.wasm) are exactly what kernels/assembly/ compiles to with the
 * pinned AssemblyScript devDependency: a stale .wasm fails here (run `npm run build:kernels`).
 */
import { expect, it } from "vitest";
import { checkKernels, KERNEL_BUILDS } from "../../kernels/build.ts";

it("kernels/wasm matches a fresh build of kernels/assembly", async () => {
  expect(KERNEL_BUILDS.map((b) => b.file).sort()).toEqual(["paligemma-kernel-relaxed.wasm", "paligemma-kernel-simd.wasm"]);
  expect(await checkKernels()).toEqual([]);
}, 240_000);
