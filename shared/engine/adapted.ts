/** An engine seen through one LoRA adapter: what generation loops take (they call prefill and step only). */
import type { PaliGemmaEngine } from "./types.ts";

/** `engine` with every encode and prefill made with `adapter` (null: `engine` itself). */
export function withAdapter(engine: PaliGemmaEngine, adapter: string | null): PaliGemmaEngine {
  if (adapter === null) return engine;
  return {
    config: engine.config,
    encodeImage: (pixels) => engine.encodeImage(pixels, { adapter }),
    prefill: (soft, ids, opts = {}) => engine.prefill(soft, ids, { ...opts, adapter }),
    step: (state, id) => engine.step(state, id),
    ...(engine.memory ? { memory: () => engine.memory!() } : {}),
  };
}
