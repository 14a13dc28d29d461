/**
 * The LoRA adapters one kernel instance holds, least recently used dropped first once their factors pass a byte
 * budget (the adapter just asked for is always kept, even alone over the budget). An adapter is loaded at most
 * once at a time; a dropped one is loaded again when asked for. Users check {@link KernelAdapter.isReleased}
 * right before a synchronous kernel call (the engine does), since another request may drop it in between.
 */
import type { KernelAdapter } from "./lora.ts";

/** Default budget for the factors of the adapters one kernel instance keeps. */
export const DEFAULT_ADAPTER_BYTES = 16e6; // ≈ 10 rank-8 all-linear adapters of one PaliGemma-3B decoder layer

export class AdapterCache {
  private readonly loading = new Map<string, Promise<KernelAdapter>>();
  private readonly loaded = new Map<string, KernelAdapter>(); // in order of use, least recent first

  constructor(private readonly maxBytes = DEFAULT_ADAPTER_BYTES) {}

  /** Adapter `name`, from memory or loaded with `load`; then drops the least recently used over the budget. */
  async get(name: string, load: () => Promise<KernelAdapter>): Promise<KernelAdapter> {
    const held = this.loaded.get(name);
    if (held && !held.isReleased) {
      this.loaded.delete(name);
      this.loaded.set(name, held);
      return held;
    }
    let p = this.loading.get(name);
    if (!p) {
      p = load();
      this.loading.set(name, p);
      p.then(
        (a) => {
          this.loading.delete(name);
          this.loaded.delete(name);
          this.loaded.set(name, a);
          this.evict(name);
        },
        () => this.loading.delete(name),
      );
    }
    return p;
  }

  /** Names and factor bytes of the adapters held, least recently used first. */
  held(): { name: string; bytes: number }[] {
    return [...this.loaded.values()].map((a) => ({ name: a.name, bytes: a.bytes }));
  }

  /** Bytes of factors held. */
  get bytes(): number {
    let sum = 0;
    for (const a of this.loaded.values()) sum += a.bytes;
    return sum;
  }

  private evict(keep: string): void {
    for (const [name, a] of this.loaded) {
      if (this.bytes <= this.maxBytes) return;
      if (name === keep) continue;
      a.release();
      this.loaded.delete(name);
    }
  }
}
