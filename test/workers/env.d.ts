/// <reference types="@cloudflare/vitest-pool-workers/types" />
import type { DecoderEnv } from "../../functions/decoder/env.ts";
import type { FakeSessionObject, SlowSessionObject } from "./entry.ts";

declare global {
  namespace Cloudflare {
    interface Env extends DecoderEnv {
      readonly FAKE_SESSIONS: DurableObjectNamespace<FakeSessionObject>;
      readonly SLOW_SESSIONS: DurableObjectNamespace<SlowSessionObject>;
      /** base64 PNGs of the shapes model's eval set. */
      readonly EVAL_IMAGE_000: string;
      readonly EVAL_IMAGE_001: string;
    }
  }
}
