/**
 * Summing the parts of a decoder layer whose MLP the planner cut by its intermediate dimension: each part's
 * stage returns its share of the MLP (down · (gelu(gate) · up) over its rows of the intermediate dimension), the
 * caller adds them in part order (so results do not depend on which part answers first), applies Gemma 2's
 * post-feed-forward norm to the sum, and adds the residual: x ← x + norm(Σ parts), as the unsplit layer does.
 */

/** Gemma's RMSNorm of each row of `x` f32[rows, n] in float32 steps: x · 1/sqrt(mean(x²) + eps) · w, w holding (1 + weight). */
export function rmsNormRows(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  const n = w.length;
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss = Math.fround(ss + Math.fround(x[r * n + i] * x[r * n + i]));
    const inv = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(ss / n) + eps))));
    for (let i = 0; i < n; i++) out[r * n + i] = Math.fround(Math.fround(x[r * n + i] * inv) * w[i]);
  }
  return out;
}

/**
 * The layer's output rows: `attended` (the rows after the attention block) + postFfNorm(Σ `partials` in order);
 * without a post-feed-forward norm (Gemma 1) the plain sum is added.
 */
export function combineParts(attended: Float32Array, partials: readonly Float32Array[], postFfNorm: Float32Array | null, eps: number): Float32Array {
  const sum = new Float32Array(attended.length);
  for (const p of partials) {
    if (p.length !== attended.length) throw new Error(`an MLP part gave ${p.length} values for ${attended.length}`);
    for (let i = 0; i < sum.length; i++) sum[i] = Math.fround(sum[i] + p[i]);
  }
  const y = postFfNorm ? rmsNormRows(sum, postFfNorm, eps) : sum;
  const out = new Float32Array(attended.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(attended[i] + y[i]);
  return out;
}
