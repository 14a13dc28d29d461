/**
 * Loads each model at most once per isolate, lazily (on the first request, never at module load: Workers give
 * a script 1 s to start). The cached value is the read-only model (graphs, weights, tokenizer); nothing about
 * a request or a user is kept here. A failed load is forgotten so the next request retries it.
 */
export class ModelCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  /** The model under `key`, loading it with `load` the first time. */
  get(key: string, load: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = load();
      this.entries.set(key, entry);
      entry.catch(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      });
    }
    return entry;
  }
}
