/** An in-memory stand-in for the parts of Workers KV the soft-token store uses (get/put with TTL). */
export class MemoryKV {
  readonly values = new Map<string, { value: string | ArrayBuffer; ttl?: number }>();
  readonly puts: string[] = [];
  /** Every key read, in order. */
  readonly gets: string[] = [];

  async get(key: string, type: "json" | "arrayBuffer" | "text" = "text"): Promise<unknown> {
    this.gets.push(key);
    const entry = this.values.get(key);
    if (!entry) return null;
    const { value } = entry;
    if (type === "arrayBuffer") return typeof value === "string" ? new TextEncoder().encode(value).buffer : value.slice(0);
    const text = typeof value === "string" ? value : new TextDecoder().decode(value);
    return type === "json" ? JSON.parse(text) : text;
  }

  async put(key: string, value: string | ArrayBuffer | ArrayBufferView, options?: { expirationTtl?: number }): Promise<void> {
    this.puts.push(key);
    const stored =
      typeof value === "string"
        ? value
        : ArrayBuffer.isView(value)
          ? value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)
          : value.slice(0);
    this.values.set(key, { value: stored as string | ArrayBuffer, ttl: options?.expirationTtl });
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  /** This object typed as the binding it imitates. */
  asKV(): KVNamespace {
    return this as unknown as KVNamespace;
  }
}
