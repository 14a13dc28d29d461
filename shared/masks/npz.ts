/**
 * numpy `.npz` archives: a zip whose member `KEY.npy` holds the array named KEY (numpy.savez writes them
 * stored, numpy.savez_compressed deflated). Only the keys asked for are decompressed and parsed; other members
 * (the VQ-VAE file's encoder, an EMA quantiser's state) are ignored.
 */
import { ModelFormatError } from "../errors.ts";
import { parseNpy, type NpyArray } from "./npy.ts";
import { listZip, readZipMember } from "./zip.ts";

/**
 * Reads the arrays `keys` from an `.npz` archive.
 * @param what the file's name, for error messages
 * @returns the arrays by key, in the order of `keys`
 * @throws ModelFormatError for a file that is not an npz, a missing key (naming it and what the file holds),
 *   or a member that is not a little-endian float32 C-order array
 */
export async function readNpz(bytes: Uint8Array, keys: readonly string[], what: string): Promise<Map<string, NpyArray>> {
  const members = new Map(listZip(bytes, what).map((m) => [m.name, m]));
  const missing = keys.filter((k) => !members.has(`${k}.npy`));
  if (missing.length > 0) {
    const held = [...members.keys()].map((n) => n.replace(/\.npy$/, ""));
    throw new ModelFormatError(
      `${what}: no array ${missing.map((k) => `"${k}"`).join(", ")} (the file holds ${held.length} arrays: ${held.slice(0, 8).join(", ")}${held.length > 8 ? ", …" : ""})`,
    );
  }
  const arrays = new Map<string, NpyArray>();
  for (const key of keys) {
    const member = members.get(`${key}.npy`)!;
    arrays.set(key, parseNpy(await readZipMember(bytes, member, what), `${what}: ${member.name}`));
  }
  return arrays;
}
