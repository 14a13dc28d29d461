/** Fetches model files from a store and checks them against the manifest (size always, sha256 on request). */
import { ModelFormatError } from "../errors.ts";
import type { Manifest } from "../model/manifest.ts";
import type { ModelStore } from "./types.ts";

export async function fetchFile(store: ModelStore, manifest: Manifest, name: string, verify: boolean): Promise<Uint8Array> {
  const entry = manifest.files[name];
  if (!entry) throw new ModelFormatError(`${name} is not listed in the manifest of ${manifest.id}`);
  const bytes = await store.get(name);
  if (!bytes) throw new ModelFormatError(`model ${manifest.id}: file ${name} is missing from the model store`);
  if (bytes.byteLength !== entry.bytes) {
    throw new ModelFormatError(`model ${manifest.id}: ${name} has ${bytes.byteLength} bytes, the manifest says ${entry.bytes}`);
  }
  if (verify) {
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
    if (digest !== entry.sha256) throw new ModelFormatError(`model ${manifest.id}: ${name} fails its sha256 check`);
  }
  // Typed views over the weights need aligned storage (Node may hand out pooled, unaligned buffers).
  return bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
}

export function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}
