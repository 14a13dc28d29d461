/**
 * big_vision's VQ-VAE mask decoder (segmentation.py `Decoder`; docs/model-notes.md, "The VQ-VAE mask
 * decoder"), as plain TypeScript loops over NHWC activations:
 *
 *   codes int[16] → codebook rows → grid      [4, 4, D]      code t at row t // 4, column t % 4
 *   conv0: 1×1 + bias, ReLU                    [4, 4, C]
 *   resBlocks ×2: x + conv1×1(ReLU(conv3×3(ReLU(conv3×3(x)))))   (no ReLU after the add)
 *   upsample ×4: transposed conv k4 s2 + bias, ReLU     [8, 8, ·] → [16, 16, ·] → [32, 32, ·] → [64, 64, C4]
 *   conv1: 1×1 + bias, no activation           [64, 64, 1]  → float32[64, 64], row y top→bottom
 *
 * Activations are float64 (the weights are float32): the result is the float64 reference rounded once to
 * float32, as the golden masks the tests compare with are. About 40 M multiply-adds per mask; plain loops run it in
 * tens of milliseconds in Node and workerd (README, "Segmentation masks"), so no kernel-module code is needed.
 */
import { InputError } from "../errors.ts";
import { VAE_GRID, VAE_MASK_SIZE, type ConvWeights, type VaeWeights } from "./vae-weights.ts";

/** Codes per object: one per cell of the 4×4 grid. */
export const VAE_CODES_PER_MASK = VAE_GRID * VAE_GRID;

/** An NHWC activation. */
interface Activation {
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly data: Float64Array; // [h, w, c]
}

/**
 * Stride-1 cross-correlation with zero padding (k − 1) / 2, so the size is kept (1×1 and 3×3 "SAME").
 * out[y, x, o] = bias[o] + Σ_{ky, kx, i} in[y + ky − p, x + kx − p, i] · W[ky, kx, i, o]
 */
function conv2d(x: Activation, l: ConvWeights): Activation {
  const { h, w } = x;
  const { k, cin, cout, weight, bias } = l;
  const pad = (k - 1) >> 1;
  const out = new Float64Array(h * w * cout);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const o0 = (y * w + xx) * cout;
      for (let o = 0; o < cout; o++) out[o0 + o] = bias[o];
      for (let ky = 0; ky < k; ky++) {
        const iy = y + ky - pad;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < k; kx++) {
          const ix = xx + kx - pad;
          if (ix < 0 || ix >= w) continue;
          const i0 = (iy * w + ix) * cin;
          const w0 = (ky * k + kx) * cin;
          for (let i = 0; i < cin; i++) {
            const v = x.data[i0 + i];
            if (v === 0) continue; // half the inputs are ReLU zeros
            const wr = (w0 + i) * cout;
            for (let o = 0; o < cout; o++) out[o0 + o] += v * weight[wr + o];
          }
        }
      }
    }
  }
  return { h, w, c: cout, data: out };
}

/**
 * Transposed convolution, kernel 4, stride 2, PyTorch padding 1 (= Flax/lax padding 2; docs/model-notes.md,
 * "The transposed convolution"), as a scatter: input pixel (i, j) adds in[i, j, c] · W[ky, kx, c, o] to
 * output pixel (2i − 1 + ky, 2j − 1 + kx); contributions outside [0, 2n) are dropped. n → 2n.
 */
function convTranspose2d(x: Activation, l: ConvWeights): Activation {
  const { k, cin, cout, weight, bias } = l;
  const oh = 2 * x.h;
  const ow = 2 * x.w;
  const out = new Float64Array(oh * ow * cout);
  for (let p = 0; p < oh * ow; p++) out.set(bias, p * cout);
  for (let iy = 0; iy < x.h; iy++) {
    for (let ix = 0; ix < x.w; ix++) {
      const i0 = (iy * x.w + ix) * cin;
      for (let i = 0; i < cin; i++) {
        const v = x.data[i0 + i];
        if (v === 0) continue;
        for (let ky = 0; ky < k; ky++) {
          const oy = 2 * iy - 1 + ky;
          if (oy < 0 || oy >= oh) continue;
          for (let kx = 0; kx < k; kx++) {
            const ox = 2 * ix - 1 + kx;
            if (ox < 0 || ox >= ow) continue;
            const o0 = (oy * ow + ox) * cout;
            const wr = ((ky * k + kx) * cin + i) * cout;
            for (let o = 0; o < cout; o++) out[o0 + o] += v * weight[wr + o];
          }
        }
      }
    }
  }
  return { h: oh, w: ow, c: cout, data: out };
}

function relu(x: Activation): Activation {
  const d = x.data;
  for (let i = 0; i < d.length; i++) if (d[i] < 0) d[i] = 0;
  return x;
}

/** The latent grid: code t's codebook row at grid row t // 4, column t % 4 (row-major, NHWC). */
function embed(weights: VaeWeights, codes: readonly number[]): Activation {
  if (codes.length !== VAE_CODES_PER_MASK) {
    throw new InputError("invalid_request", `a mask needs ${VAE_CODES_PER_MASK} codes, got ${codes.length}`, "codes");
  }
  const { dim, codebook } = weights;
  const data = new Float64Array(VAE_CODES_PER_MASK * dim);
  codes.forEach((code, t) => {
    if (!Number.isInteger(code) || code < 0 || code >= weights.codes) {
      throw new InputError("invalid_request", `code ${t} is ${code}, outside the codebook's 0..${weights.codes - 1}`, "codes");
    }
    for (let d = 0; d < dim; d++) data[t * dim + d] = codebook[code * dim + d];
  });
  return { h: VAE_GRID, w: VAE_GRID, c: dim, data };
}

/**
 * Decodes 16 codebook indices into the raw 64×64 mask: the decoder's output before any resize or threshold
 * (big_vision treats > 0 as inside; trained weights give roughly [−1, 1]).
 * @param codes the 16 `<segNNN>` values in token order
 * @returns float32[64, 64], row-major, y from the top
 * @throws InputError for a wrong number of codes or a code outside the codebook
 */
export function decodeMask(weights: VaeWeights, codes: readonly number[]): Float32Array {
  let x = relu(conv2d(embed(weights, codes), weights.conv0));
  for (const block of weights.resBlocks) {
    const h = conv2d(relu(conv2d(relu(conv2d(x, block.conv0)), block.conv1)), block.conv2);
    for (let i = 0; i < h.data.length; i++) h.data[i] += x.data[i];
    x = h;
  }
  for (const layer of weights.upsample) x = relu(convTranspose2d(x, layer));
  const out = conv2d(x, weights.conv1);
  if (out.h !== VAE_MASK_SIZE || out.w !== VAE_MASK_SIZE || out.c !== 1) throw new Error(`VQ-VAE output is [${out.h}, ${out.w}, ${out.c}]`);
  return Float32Array.from(out.data);
}
