/**
 * Token embeddings read from the tied LM head's weight files (PaliGemma ties lm_head to embed_tokens), so
 * the table is stored once. fp32/fp16 heads hold the transposed table [H, rows]; int8/int4 heads hold
 * MatMulNBits rows [rows, H].
 */
import { ModelFormatError } from "../errors.ts";
import type { Manifest, ManifestStage, TensorEntry } from "../model/manifest.ts";
import { bitsOf, dequantRow, readColumn } from "../model/weights.ts";

interface Slice {
  readonly stage: ManifestStage;
  readonly bytes: Uint8Array; // the stage's weight file
  readonly table: TensorEntry; // head.embed.weight or head.embed.qweight
  readonly scales: Float32Array | null; // int8/int4 block scales
}

export class EmbeddingTable {
  private readonly scale: number; // float32(sqrt(H)), Gemma's normaliser

  constructor(
    private readonly manifest: Manifest,
    private readonly slices: readonly Slice[],
  ) {
    this.scale = Math.fround(Math.sqrt(manifest.config.text.hidden));
  }

  /** Builds the table from the head stages and their weight-file bytes. */
  static fromHeads(manifest: Manifest, files: ReadonlyMap<string, Uint8Array>): EmbeddingTable {
    const slices = manifest.stages
      .filter((s) => s.kind === "head")
      .map((stage) => {
        const entries = manifest.tensors[stage.weights] ?? [];
        const find = (name: string) => entries.find((e) => e.name === name) ?? null;
        const table = find("head.embed.weight") ?? find("head.embed.qweight");
        if (!table) throw new ModelFormatError(`${stage.weights}: no head.embed table in the manifest`);
        const bytes = files.get(stage.weights);
        if (!bytes) throw new ModelFormatError(`${stage.weights} was not loaded`);
        const sc = find("head.embed.scales");
        const scales = sc ? new Float32Array(bytes.slice(sc.offset, sc.offset + sc.length).buffer) : null;
        return { stage, bytes, table, scales };
      });
    return new EmbeddingTable(manifest, slices);
  }

  /** Writes embed(id) · sqrt(H) (float32 arithmetic, as Gemma scales its inputs) into `out[0..H)`. */
  lookup(id: number, out: Float32Array): void {
    const h = this.manifest.config.text.hidden;
    const slice = this.slices.find((s) => id >= s.stage.from && id < s.stage.to);
    if (!slice) throw new RangeError(`token id ${id} is outside the vocabulary (${this.manifest.config.text.vocab})`);
    const row = id - slice.stage.from;
    const rows = slice.stage.to - slice.stage.from;
    const dtype = this.manifest.weights.dtype;
    const at = (e: TensorEntry) => slice.bytes.subarray(e.offset, e.offset + e.length);
    if (dtype === "fp32" || dtype === "fp16") {
      readColumn(dtype, at(slice.table), h, rows, row, out);
    } else {
      const layout = { n: rows, k: h, bits: bitsOf(dtype), blockSize: this.manifest.weights.blockSize };
      dequantRow(layout, at(slice.table), slice.scales!, row, out);
    }
    for (let i = 0; i < h; i++) out[i] = Math.fround(out[i] * this.scale);
  }
}
