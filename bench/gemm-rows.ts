/**
 * The GEMM row set of `npm run bench`: every distinct weight-matrix product of one PaliGemma-3B prefill layer
 * (Gemma 2B over the prompt rows) and one SigLIP So400m layer (over the 256 image tokens), timed alone in the
 * kernel (kernels/bench-worker/gemm-bench.ts) for the float32 GEMM, the integer GEMMs over int8 and int4 weights
 * and the float GEMM over int8 weights, and the table comparing their GOP/s (10⁹ multiply-or-add operations,
 * 2·m·n·k per product, per second).
 */
import type { GemmShape } from "../kernels/bench-worker/gemm-bench.ts";
import type { ModelConfig } from "../shared/model/config.ts";
import type { KernelRow } from "./kernel-rows.ts";

/** A product and how many matrices of one layer have its shape (for the layer-weighted GOP/s). */
export interface LayerProduct extends GemmShape {
  readonly count: number;
}

/** The distinct products of one decoder layer over `rows` prompt rows and one vision layer over all image tokens. */
export function layerProducts(c: ModelConfig, rows: number): LayerProduct[] {
  const t = c.text;
  const v = c.vision;
  const n = c.imageTokens;
  return [
    { name: "gemma q/o", m: rows, n: t.heads * t.headDim, k: t.hidden, count: 2 }, // o is [H, heads·hd]: the same work
    { name: "gemma k/v", m: rows, n: t.kvHeads * t.headDim, k: t.hidden, count: 2 },
    { name: "gemma gate/up", m: rows, n: t.intermediate, k: t.hidden, count: 2 },
    { name: "gemma down", m: rows, n: t.hidden, k: t.intermediate, count: 1 },
    { name: "siglip q/k/v/o", m: n, n: v.hidden, k: v.hidden, count: 4 },
    { name: "siglip fc1", m: n, n: v.intermediate, k: v.hidden, count: 1 },
    { name: "siglip fc2", m: n, n: v.hidden, k: v.intermediate, count: 1 },
  ];
}

const COLUMNS = ["fp32-kernel", "int8-kernel", "int4-kernel", "int4-pairs-kernel", "int4-i16-kernel", "int8-i7-kernel", "int4-i7-kernel", "int8-float-kernel", "int8-a8-kernel", "int8-split-kernel"] as const;
/** The columns after fp32 that get a ratio column and a goal line (index into COLUMNS, label). */
const RATIOS = [[1, "int8"], [8, "int8-a8"], [9, "int8-split"], [2, "int4"], [3, "int4-pairs"], [4, "int4-i16"], [5, "int8-i7"]] as const;

/** The GEMM table (one line per runtime × product, plus the layer-weighted totals) and the #16 goal line. */
export function formatGemmRows(rows: readonly KernelRow[], products: readonly LayerProduct[]): string {
  const gemm = rows.filter((r) => r.stage === "gemm");
  if (gemm.length === 0) return "";
  const lines = [
    "kernel GEMMs alone: GOP/s = 2·m·n·k / median time; int8 / int4 = the models' default integer GEMM (int8 weights × int16 activations, gemm-q.ts; int4 weights × int8 activations and relaxed 8-bit dot products, gemm-q4.ts, in the form wideDot picks), int8-a8 = int8 weights × int8 activations (gemm-q8.ts in the form fullDot picks, the int8-a8 option), int8-split = the same in its 7 + 1-bit split form, int4-pairs = the same in its int16-pairs form (pmaddubsw + paddw), int4-i16 = int4 weights × int16 activations (gemm-q.ts, the int4 default before), -i7 = 7-bit activations and relaxed 8-bit dot products, int8-float = int8 weights dequantised to float32 per panel",
    "",
    "| runtime | product | m × n × k | fp32 GOP/s | int8 GOP/s | int4 GOP/s | int4-pairs GOP/s | int4-i16 GOP/s | int8-i7 GOP/s | int4-i7 GOP/s | int8-float GOP/s | int8-a8 GOP/s | int8-split GOP/s | int8 ÷ fp32 | int8-a8 ÷ fp32 | int8-split ÷ fp32 | int4 ÷ fp32 | int4-pairs ÷ fp32 | int4-i16 ÷ fp32 | int8-i7 ÷ fp32 |",
    "|---|---|---|" + "---:|".repeat(COLUMNS.length + RATIOS.length),
  ];
  const goals: string[] = [];
  for (const runtime of [...new Set(gemm.map((r) => r.runtime))]) {
    const totals = new Map<string, { ops: Map<string, number>; ms: Map<string, number> }>();
    for (const p of products) {
      const at = (label: string) => gemm.find((r) => r.runtime === runtime && r.name === p.name && r.dtype === label);
      const cells = COLUMNS.map((label) => at(label)?.gops);
      if (cells.every((x) => x === undefined)) continue;
      const part = p.name.split(" ")[0];
      const tot = totals.get(part) ?? { ops: new Map(), ms: new Map() };
      totals.set(part, tot);
      for (const label of COLUMNS) {
        const r = at(label);
        if (!r) continue;
        tot.ops.set(label, (tot.ops.get(label) ?? 0) + p.count * 2 * p.m * p.n * p.k);
        tot.ms.set(label, (tot.ms.get(label) ?? 0) + p.count * r.ms);
      }
      lines.push(row(runtime, p.name, `${p.m} × ${p.n} × ${p.k}`, cells));
    }
    for (const [part, tot] of totals) {
      const cells = COLUMNS.map((label) => (tot.ms.has(label) ? tot.ops.get(label)! / tot.ms.get(label)! / 1e6 : undefined));
      lines.push(row(runtime, `**${part} layer**`, "all products", cells));
      if (runtime === "workerd" && cells[0] !== undefined) {
        for (const [i, label] of [...RATIOS, [6, "int4-i7"] as const]) {
          const ratio = cells[i] === undefined ? null : cells[i]! / cells[0]!;
          if (ratio !== null) goals.push(`${part} layer, workerd: ${label} GEMM at ${ratio.toFixed(2)}× the float32 kernel GEMM's GOP/s (goal ≥ 2×) ${ratio >= 2 ? "met" : "NOT met"}`);
        }
      }
    }
  }
  return [...lines, "", ...goals].join("\n");
}

function row(runtime: string, name: string, dims: string, cells: readonly (number | undefined)[]): string {
  const f = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(1));
  const ratio = (x: number | undefined) => (x === undefined || cells[0] === undefined ? "–" : (x / cells[0]).toFixed(2));
  return `| ${runtime} | ${name} | ${dims} | ${cells.map(f).join(" | ")} | ${RATIOS.map(([i]) => ratio(cells[i])).join(" | ")} |`;
}
