/**
 * A stage's weight file, written as graphs are built: tensors appended in order (64-byte aligned), with a
 * running sha256 and an index of what lies where (recorded in the manifest).
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { WeightSink } from "./onnx/builder.ts";
import type { DataTypeName } from "./onnx/proto.ts";
import type { TensorEntry } from "../shared/model/manifest.ts";

const ALIGN = 64;

export class WeightFile implements WeightSink {
  readonly entries: TensorEntry[] = [];
  private readonly fd: number;
  private readonly hash: Hash = createHash("sha256");
  private offset = 0;

  constructor(
    dir: string,
    readonly name: string,
  ) {
    this.fd = openSync(join(dir, name), "w");
  }

  append(t: { name: string; type: DataTypeName; dims: readonly number[] }, bytes: Uint8Array) {
    const pad = (ALIGN - (this.offset % ALIGN)) % ALIGN;
    if (pad) this.write(new Uint8Array(pad));
    const at = { location: this.name, offset: this.offset, length: bytes.byteLength };
    this.write(bytes);
    this.entries.push({ name: t.name, dtype: t.type, dims: [...t.dims], offset: at.offset, length: at.length });
    return at;
  }

  /** Closes the file and returns its size and sha256. */
  finish(): { bytes: number; sha256: string } {
    closeSync(this.fd);
    return { bytes: this.offset, sha256: this.hash.digest("hex") };
  }

  private write(bytes: Uint8Array): void {
    writeSync(this.fd, bytes);
    this.hash.update(bytes);
    this.offset += bytes.byteLength;
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
