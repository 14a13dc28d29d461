/** The property every fuzzed image must have, shared by the Node and workerd runs. */
import { InputError } from "../../shared/errors.ts";
import { decodeImage, sniffImage } from "../../shared/image/index.ts";

/** Pixel limit the fuzzers decode under. */
export const FUZZ_LIMITS = { maxPixels: 1_000_000 } as const;

/** Per-case wall-clock budget (Node; workerd's clock does not advance while a request computes). */
export const FUZZ_CASE_MS = 1500;

/**
 * Decodes `bytes`: either a 4xx InputError (a refusal) or an image of exactly the size its header declares (a GIF
 * may be larger: a first frame past its logical screen grows it, as in Pillow, within the pixel limit).
 * Anything else (another error, a 5xx, a wrong size) throws.
 */
export async function decodesOrRefuses(bytes: Uint8Array): Promise<"decoded" | "refused"> {
  try {
    const img = await decodeImage(bytes, FUZZ_LIMITS);
    const header = sniffImage(bytes);
    const grown = header.format === "gif" && img.width >= header.width && img.height >= header.height && img.width * img.height <= FUZZ_LIMITS.maxPixels;
    if ((!grown && (img.width !== header.width || img.height !== header.height)) || img.data.length !== img.width * img.height * 3) {
      throw new Error(`decoded ${img.width}×${img.height} (${img.data.length} bytes) for a ${header.width}×${header.height} header`);
    }
    return "decoded";
  } catch (err) {
    if (err instanceof InputError && err.status >= 400 && err.status < 500 && err.param === "image") return "refused";
    throw err;
  }
}
