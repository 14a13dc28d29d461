/**
 * The playground: `GET /` serves one self-contained HTML page that drives the public API from the browser.
 *
 *   import { registerPlayground } from "../playground/index.ts";
 *   registerPlayground(app);               // GET / (and HEAD /) on the decoder app
 *   app.route("/", playgroundApp());      // or mount the sub-app
 *
 * The page's inline style and script are allowed by their sha256 hashes in a strict Content-Security-Policy
 * (no other script, no remote resources, requests only to this origin). The script is typed TypeScript in
 * browser/ (checked against the DOM lib by `npm run typecheck`), bundled by scripts/build-playground.ts into the
 * committed script.built.ts, so nothing is built at start or deploy.
 */
import { Hono, type Context, type Env } from "hono";
import { PLAYGROUND_HTML, PLAYGROUND_PARTS } from "./page.ts";

export { PLAYGROUND_HTML } from "./page.ts";

/** sha256 of a string, base64, as CSP source expressions want it. */
async function sha256Base64(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary);
}

let policy: Promise<string> | undefined; // the page is a constant, so its policy is too

/** The page's Content-Security-Policy (computed once per isolate). */
export function playgroundCsp(): Promise<string> {
  policy ??= Promise.all([sha256Base64(PLAYGROUND_PARTS.js), sha256Base64(PLAYGROUND_PARTS.css)]).then(([js, css]) =>
    [
      "default-src 'none'",
      `script-src 'sha256-${js}'`,
      `style-src 'sha256-${css}'`,
      "img-src 'self' blob: data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
  );
  return policy;
}

/** Responds with the page. */
async function servePage(c: Context): Promise<Response> {
  return c.html(PLAYGROUND_HTML, 200, {
    "content-security-policy": await playgroundCsp(),
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
}

/** Adds `GET /` (Hono answers HEAD from it) serving the playground page to `app`. */
export function registerPlayground<E extends Env>(app: Hono<E>, path = "/"): void {
  app.get(path, servePage);
}

/** A sub-app serving the page at its root, for `app.route(prefix, playgroundApp())`. */
export function playgroundApp<E extends Env>(): Hono<E> {
  const app = new Hono<E>();
  registerPlayground(app);
  return app;
}
