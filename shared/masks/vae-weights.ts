/**
 * The weights of big_vision's VQ-VAE mask decoder (`vae-oid.npz`; docs/model-notes.md, "The VQ-VAE
 * mask decoder"), in the layout this project computes with.
 *
 * The npz keeps PyTorch layouts: Conv2d weights [out, in, kh, kw], ConvTranspose2d weights [in, out, kh, kw].
 * Both are repacked once to [kh, kw, in, out] ("HWIO"): with NHWC activations the innermost loop then runs over
 * contiguous output channels. For a Conv2d this is Flax's kernel, transpose(W, (2,3,1,0)); for a ConvTranspose2d
 * it is transpose(W, (2,3,0,1)) (big_vision's own transpose gives [kh, kw, out, in], which its
 * `transpose_kernel=True` then swaps back). Biases and the codebook are used as stored.
 *
 * Channel counts are read from the shapes, never assumed; each layer must take what the one before gives.
 */
import { ModelFormatError } from "../errors.ts";
import type { NpyArray } from "./npy.ts";

/** big_vision's key names (segmentation.py `_get_params`); the missing indices 1, 5, 7, 9, 11 are ReLUs. */
export const VAE_KEYS = Object.freeze({
  codebook: "_vq_vae._embedding",
  conv0: "decoder.0",
  resBlocks: ["decoder.2.net", "decoder.3.net"] as const,
  upsample: ["decoder.4", "decoder.6", "decoder.8", "decoder.10"] as const,
  conv1: "decoder.12",
});

/** The 4×4 latent grid: 16 codes per object, code t at row t // 4, column t % 4. */
export const VAE_GRID = 4;
/** Transposed-convolution kernel size (stride 2, PyTorch padding 1 = Flax padding 2: n → 2n). */
export const UPSAMPLE_KERNEL = 4;
/** Output side: the grid doubled by each of the four transposed convolutions (4 → 64). */
export const VAE_MASK_SIZE = VAE_GRID * 2 ** VAE_KEYS.upsample.length;

/** One convolution, packed. */
export interface ConvWeights {
  /** Square kernel side: 1 or 3 for plain convolutions, 4 for the transposed ones. */
  readonly k: number;
  readonly cin: number;
  readonly cout: number;
  readonly weight: Float32Array; // [k, k, cin, cout]
  readonly bias: Float32Array; // [cout]
}

/** One residual block: x + conv1x1(ReLU(conv3x3(ReLU(conv3x3(x))))). */
export interface ResBlockWeights {
  readonly conv0: ConvWeights; // net.0, 3×3
  readonly conv1: ConvWeights; // net.2, 3×3
  readonly conv2: ConvWeights; // net.4, 1×1
}

/** The whole decoder. */
export interface VaeWeights {
  readonly codes: number; // codebook rows (128 in vae-oid.npz)
  readonly dim: number; // codebook width D (512)
  readonly codebook: Float32Array; // [codes, dim]
  readonly conv0: ConvWeights; // 1×1, D → C
  readonly resBlocks: readonly ResBlockWeights[]; // 2, C → C
  readonly upsample: readonly ConvWeights[]; // 4 transposed, k 4, stride 2
  readonly conv1: ConvWeights; // 1×1, → 1
}

/** Every key of the npz the decoder reads: weight and bias of each layer, and the codebook. */
export function vaeNpzKeys(): string[] {
  const layers = [VAE_KEYS.conv0, ...VAE_KEYS.resBlocks.flatMap((b) => [`${b}.0`, `${b}.2`, `${b}.4`]), ...VAE_KEYS.upsample, VAE_KEYS.conv1];
  return [VAE_KEYS.codebook, ...layers.flatMap((l) => [`${l}.weight`, `${l}.bias`])];
}

/** Named float32 arrays: the npz's (PyTorch layouts) or a converted file's (packed). */
export type TensorLookup = (name: string) => NpyArray;

type Layout = "torch" | "packed";

/** Reads a conv layer named `key`: plain (torch [out, in, k, k]) or transposed (torch [in, out, k, k]). */
function conv(get: TensorLookup, key: string, layout: Layout, transposed: boolean, want: { k: number; cin?: number; cout?: number }): ConvWeights {
  const w = get(`${key}.weight`);
  const b = get(`${key}.bias`);
  const expected = (dims: readonly number[]): string => `[${dims.map((d) => (d < 0 ? "?" : d)).join(", ")}]`;
  const wantDims =
    layout === "packed" ? [want.k, want.k, want.cin ?? -1, want.cout ?? -1] : transposed ? [want.cin ?? -1, want.cout ?? -1, want.k, want.k] : [want.cout ?? -1, want.cin ?? -1, want.k, want.k];
  const ok = w.dims.length === 4 && wantDims.every((d, i) => d < 0 || d === w.dims[i]);
  if (!ok) throw new ModelFormatError(`VQ-VAE ${key}.weight has shape [${w.dims.join(", ")}], expected ${expected(wantDims)} (${layout === "torch" ? (transposed ? "ConvTranspose2d [in, out, kh, kw]" : "Conv2d [out, in, kh, kw]") : "packed [kh, kw, in, out]"})`);
  const [cin, cout] = layout === "packed" ? [w.dims[2], w.dims[3]] : transposed ? [w.dims[0], w.dims[1]] : [w.dims[1], w.dims[0]];
  if (b.dims.length !== 1 || b.dims[0] !== cout) throw new ModelFormatError(`VQ-VAE ${key}.bias has shape [${b.dims.join(", ")}], expected [${cout}]`);
  const k = want.k;
  if (layout === "packed") return { k, cin, cout, weight: w.data, bias: b.data };
  const packed = new Float32Array(k * k * cin * cout);
  for (let a = 0; a < w.dims[0]; a++) {
    for (let c = 0; c < w.dims[1]; c++) {
      const [i, o] = transposed ? [a, c] : [c, a];
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) packed[((ky * k + kx) * cin + i) * cout + o] = w.data[((a * w.dims[1] + c) * k + ky) * k + kx];
      }
    }
  }
  return { k, cin, cout, weight: packed, bias: b.data };
}

/**
 * The decoder's weights from named arrays, checking every shape against the layer before it.
 * @param get the arrays by npz key (missing keys must throw)
 * @param layout "torch" for an npz as big_vision reads it, "packed" for a converted file
 * @throws ModelFormatError naming the key whose shape is wrong
 */
export function vaeWeights(get: TensorLookup, layout: Layout): VaeWeights {
  const cb = get(VAE_KEYS.codebook);
  if (cb.dims.length !== 2) throw new ModelFormatError(`VQ-VAE ${VAE_KEYS.codebook} has shape [${cb.dims.join(", ")}], expected [codes, dim]`);
  const [codes, dim] = cb.dims;
  const conv0 = conv(get, VAE_KEYS.conv0, layout, false, { k: 1, cin: dim });
  const c = conv0.cout;
  const resBlocks = VAE_KEYS.resBlocks.map((key) => ({
    conv0: conv(get, `${key}.0`, layout, false, { k: 3, cin: c, cout: c }),
    conv1: conv(get, `${key}.2`, layout, false, { k: 3, cin: c, cout: c }),
    conv2: conv(get, `${key}.4`, layout, false, { k: 1, cin: c, cout: c }),
  }));
  const upsample: ConvWeights[] = [];
  let channels = c;
  for (const key of VAE_KEYS.upsample) {
    const layer = conv(get, key, layout, true, { k: UPSAMPLE_KERNEL, cin: channels });
    upsample.push(layer);
    channels = layer.cout;
  }
  const conv1 = conv(get, VAE_KEYS.conv1, layout, false, { k: 1, cin: channels, cout: 1 });
  return Object.freeze({ codes, dim, codebook: cb.data, conv0, resBlocks, upsample, conv1 });
}

/**
 * The packed tensors, named by their npz keys, in file order (for the converter). Plain and transposed
 * convolution weights alike are [k, k, in, out].
 */
export function packedTensors(w: VaeWeights): { name: string; dims: number[]; data: Float32Array }[] {
  const out: { name: string; dims: number[]; data: Float32Array }[] = [{ name: VAE_KEYS.codebook, dims: [w.codes, w.dim], data: w.codebook }];
  const add = (key: string, c: ConvWeights) => {
    out.push({ name: `${key}.weight`, dims: [c.k, c.k, c.cin, c.cout], data: c.weight });
    out.push({ name: `${key}.bias`, dims: [c.cout], data: c.bias });
  };
  add(VAE_KEYS.conv0, w.conv0);
  VAE_KEYS.resBlocks.forEach((key, i) => {
    add(`${key}.0`, w.resBlocks[i].conv0);
    add(`${key}.2`, w.resBlocks[i].conv1);
    add(`${key}.4`, w.resBlocks[i].conv2);
  });
  VAE_KEYS.upsample.forEach((key, i) => add(key, w.upsample[i]));
  add(VAE_KEYS.conv1, w.conv1);
  return out;
}
