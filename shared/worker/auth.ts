/**
 * API keys: `API_KEYS` (a Worker secret) holds one or more keys separated by commas or whitespace. When it is
 * set, every `/v1/*` request must carry `Authorization: Bearer <key>`. Keys are compared as SHA-256 digests
 * with a constant-time loop over every configured key, so neither the position of the first differing byte
 * nor which key matched shows in the timing.
 *
 * A key's owner id (the first 128 bits of its SHA-256, hex) scopes what the key creates: its sessions and its
 * images. It is derived from the secret, so it cannot be guessed by anyone without the key.
 */

/** Length of an owner id, in hex digits (128 bits). */
export const OWNER_HEX_DIGITS = 32;

/** The owner id used when no keys are configured (everything is shared). */
export const OPEN_OWNER = "";

/** The configured keys, as digests. */
export interface ApiKeys {
  readonly digests: readonly Uint8Array[];
}

const cache = new Map<string, Promise<ApiKeys | null>>();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses the `API_KEYS` secret (null when unset or blank: the API is open). Cached per secret value. */
export function parseApiKeys(secret: string | undefined): Promise<ApiKeys | null> {
  const raw = secret ?? "";
  let parsed = cache.get(raw);
  if (!parsed) {
    const keys = raw.split(/[\s,]+/).filter((k) => k.length > 0);
    parsed = keys.length === 0 ? Promise.resolve(null) : Promise.all(keys.map(digest)).then((digests) => ({ digests }));
    if (cache.size > 8) cache.clear(); // a secret changes rarely; never let this grow
    cache.set(raw, parsed);
  }
  return parsed;
}

/** Constant-time equality of two equal-length digests. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * The owner id of the key in an `Authorization` header, or null when the header is missing, malformed or
 * names no configured key. Every configured key is compared, whatever the outcome.
 */
export async function authenticate(header: string | undefined, keys: ApiKeys): Promise<string | null> {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  if (!match) return null;
  const presented = await digest(match[1]);
  let found = false;
  for (const d of keys.digests) found = sameDigest(presented, d) || found;
  return found ? hex(presented).slice(0, OWNER_HEX_DIGITS) : null;
}

/** 16 random bytes as 32 hex digits, with a prefix: ids that grant access (sessions the worker names). */
export function randomId(prefix: string): string {
  return `${prefix}${hex(crypto.getRandomValues(new Uint8Array(16)))}`;
}
