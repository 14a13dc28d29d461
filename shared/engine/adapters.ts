/**
 * The LoRA adapters a model offers (its manifest's `adapters`, shared/model/adapter-manifest.ts): each adapter's
 * manifest read once from the model store (`adapters/<name>/adapter.json`, its sha256 checked against the
 * listing), and its files opened from the same folder. The CLI may add an adapter from another folder.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { InputError, ModelFormatError } from "../errors.ts";
import { parseAdapterManifest, type AdapterListing, type AdapterManifest } from "../model/adapter-manifest.ts";
import type { Manifest } from "../model/manifest.ts";
import type { ByteSource } from "../kernel/stage-file.ts";
import type { ModelStore } from "./types.ts";

export class AdapterRegistry {
  private readonly manifests = new Map<string, Promise<AdapterManifest>>();
  private readonly extra = new Map<string, { store: ModelStore; listing: AdapterListing }>();

  constructor(
    private readonly manifest: Manifest,
    private readonly store: ModelStore,
  ) {}

  /** Every adapter this model offers (listed in its manifest, and any added). */
  list(): AdapterListing[] {
    const listed = (this.manifest.adapters ?? []).filter((a) => !this.extra.has(a.name));
    return [...listed, ...[...this.extra.values()].map((e) => e.listing)];
  }

  /** The listing of adapter `name`; a 404 InputError naming it when the model has none of that name. */
  listing(name: string): AdapterListing {
    return this.extra.get(name)?.listing ?? adapterListing(this.manifest, name, this.list());
  }

  /**
   * Adds adapter `name` from its own folder (`adapter.json` and the factor files, as convert-adapter wrote
   * them), replacing a listed one of that name.
   */
  async add(name: string, store: ModelStore): Promise<AdapterManifest> {
    const bytes = await store.get("adapter.json");
    if (!bytes) throw new ModelFormatError(`adapter ${name}: no adapter.json in its folder`);
    const m = parseAdapterManifest(JSON.parse(new TextDecoder().decode(bytes)));
    if (m.base !== this.manifest.id) throw new ModelFormatError(`adapter ${name} was converted for model ${m.base}, not ${this.manifest.id}`);
    const vision = m.modules.some((x) => x.name.startsWith("vis.") || x.name === "proj");
    this.extra.set(name, { store, listing: { name, manifest: "adapter.json", sha256: hex(sha256(bytes)), factorBytes: m.factorBytes, vision } });
    this.manifests.set(name, Promise.resolve(m));
    return m;
  }

  /** Adapter `name`'s manifest (read and checked once). */
  get(name: string): Promise<AdapterManifest> {
    const listing = this.listing(name);
    let p = this.manifests.get(name);
    if (!p) {
      p = (async () => {
        const bytes = await this.store.get(listing.manifest);
        if (!bytes) throw new ModelFormatError(`model ${this.manifest.id}: adapter ${name}'s ${listing.manifest} is missing from the model store`);
        if (hex(sha256(bytes)) !== listing.sha256) throw new ModelFormatError(`model ${this.manifest.id}: ${listing.manifest} fails its sha256 check`);
        const m = parseAdapterManifest(JSON.parse(new TextDecoder().decode(bytes)));
        if (m.base !== this.manifest.id || m.name !== name) throw new ModelFormatError(`${listing.manifest} is adapter ${m.name} of ${m.base}, not ${name} of ${this.manifest.id}`);
        return m;
      })();
      p.catch(() => this.manifests.get(name) === p && this.manifests.delete(name));
      this.manifests.set(name, p);
    }
    return p;
  }

  /** Opens a file of adapter `name`'s folder (a stream when the store can). */
  opener(name: string): (file: string) => Promise<ByteSource> {
    const extra = this.extra.get(name);
    const store = extra?.store ?? this.store;
    const dir = extra ? "" : this.listing(name).manifest.replace(/[^/]*$/, "");
    return async (file) => {
      const path = dir + file;
      const source = (store.stream ? await store.stream(path) : null) ?? (await store.get(path));
      if (!source) throw new ModelFormatError(`adapter ${name}: file ${path} is missing from the store`);
      return source;
    };
  }
}

/**
 * The listing of adapter `name` among `listed` (default: the manifest's adapters).
 * @throws InputError 404 naming it when there is none of that name
 */
export function adapterListing(manifest: Manifest, name: string, listed: readonly AdapterListing[] = manifest.adapters ?? []): AdapterListing {
  const found = listed.find((a) => a.name === name);
  if (found) return found;
  const known = listed.map((a) => `${manifest.id}:${a.name}`);
  throw new InputError("not_found", `adapter "${name.slice(0, 100)}" is not converted for model ${manifest.id}${known.length ? ` (it has ${known.join(", ")})` : " (it has none)"}`, "adapter", "model_not_found");
}

/** A model store over a function opening files by name (bytes or a stream; a missing file throws), read whole. */
export function storeOver(open: (name: string) => Promise<ByteSource>): ModelStore {
  return {
    async get(name) {
      const source = await open(name);
      if (source instanceof Uint8Array) return source;
      const chunks: Uint8Array[] = [];
      if (source instanceof ReadableStream) {
        const reader = source.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
      } else for await (const c of source) chunks.push(c);
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) (out.set(c, at), (at += c.length));
      return out;
    },
  };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
