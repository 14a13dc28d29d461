/** The synchronous source graph builders read float32 weights from (HF names: converter/checkpoint/names.ts). */
export interface TensorSource {
  get(name: string): Float32Array;
}
