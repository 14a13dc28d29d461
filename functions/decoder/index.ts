/**
 * The decoder worker (public entry point): the Hono app over the session Durable Objects, with the vision
 * worker behind a service binding.
 */
import { createDecoderApp } from "./app.ts";
import type { DecoderEnv } from "./env.ts";
import { decoderDeps } from "./wiring.ts";

export { RateLimiterObject } from "./rate-limiter.ts";
export { SessionObject } from "./session.ts";

const app = createDecoderApp(decoderDeps);

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<DecoderEnv>;
